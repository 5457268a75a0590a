"""Export: verified segments become one MP4 that decodes to every recorded frame, with a report beside it."""

import json

import av
import pytest

from evidence.export import ExportError, ExportRefused, export_incident
from evidence.keys import load_evidence_identities
from evidence.seal import DecryptionError

from .conftest import FPS, cut, encode_h264


def export(env, out, **kw):
    return export_incident([env.spool], devices=env.devices, identities=load_evidence_identities(env.identity),
                           out=out, **kw)


def decoded(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return frames, stream


def test_export_joins_all_frames_with_the_signed_times(env, frames_60, tmp_path):
    sealed = env.seal_all(cut(frames_60, "inc-1"))
    calls = []
    result = export(env, tmp_path / "inc-1.mp4", progress=lambda done, total: calls.append((done, total)))
    frames, stream = decoded(result.mp4_path)
    assert len(frames) == 60
    assert (stream.codec_context.width, stream.codec_context.height) == (160, 120)
    times = [round(f.time, 3) for f in frames]
    assert times == [round(i / FPS, 3) for i in range(60)]
    assert calls == [(0, 6)] + [(i, 6) for i in range(1, 7)]
    report = json.loads(result.report_path.read_text())
    assert result.report_path.name == "inc-1.report.json"
    assert report["complete"] is True and report["gaps"] == [] and report["problems"] == []
    assert report["frames"] == 60 and report["duration_s"] == pytest.approx(2.0, abs=0.001)
    assert [s["manifest_sha256"] for s in report["segments"]] == [s.manifest_sha256 for s in sealed]
    assert all(s["included"] for s in report["segments"])
    assert report["mp4"]["sha256"] and report["start_time"] == "2025-06-15T15:06:40.000Z"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no .part left


def test_export_refuses_a_gap_unless_allowed(env, frames_60, tmp_path):
    sealed = env.seal_all(cut(frames_60, "inc-1"))
    (env.spool / sealed[2].ciphertext_name).unlink()
    (env.spool / sealed[2].manifest_name).unlink()
    with pytest.raises(ExportRefused) as refused:
        export(env, tmp_path / "x.mp4")
    assert any("segment index 2 missing" in p for p in refused.value.problems)
    assert not (tmp_path / "x.mp4").exists()

    result = export(env, tmp_path / "x.mp4", allow_gaps=True)
    frames, _ = decoded(result.mp4_path)
    assert len(frames) == 50
    assert round(frames[20].time, 3) == 1.0  # the hole keeps its length: no silent time shift
    assert result.complete is False and result.report["allow_gaps"] is True
    assert result.report["gaps"] == [{"after": sealed[1].stem, "before": sealed[3].stem, "missing_segments": 1,
                                      "missing_seq": 1, "wall_clock_gap_s": pytest.approx(0.333, abs=0.002)}]


def test_export_refuses_a_tampered_segment(env, frames_60, tmp_path):
    sealed = env.seal_all(cut(frames_60, "inc-1"))
    path = env.spool / sealed[4].ciphertext_name
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    with pytest.raises(ExportRefused, match="did not verify completely"):
        export(env, tmp_path / "x.mp4")
    result = export(env, tmp_path / "x.mp4", allow_gaps=True)
    row = next(r for r in result.report["segments"] if r["stem"] == sealed[4].stem)
    assert row["included"] is False and "ciphertext SHA-256" in row["problems"][0]
    assert len(decoded(result.mp4_path)[0]) == 50


def test_export_picks_one_incident(env, frames_60, tmp_path):
    env.seal_all(cut(frames_60[:20], "inc-1"))
    env.seal_all(cut(frames_60[20:], "inc-2"))
    with pytest.raises(ExportError, match="several incidents"):
        export(env, tmp_path / "x.mp4")
    with pytest.raises(ExportError, match="no verified segments of incident inc-9"):
        export(env, tmp_path / "x.mp4", incident_id="inc-9")
    result = export(env, tmp_path / "x.mp4", incident_id="inc-2")
    assert len(decoded(result.mp4_path)[0]) == 40
    assert decoded(result.mp4_path)[0][0].time == 0


def test_export_with_the_wrong_identity_fails_cleanly(env, frames_60, tmp_path):
    env.seal_all(cut(frames_60[:20], "inc-1"))
    with pytest.raises(DecryptionError, match="does not match any recipient"):
        export_incident([env.spool], devices=env.devices,
                        identities=load_evidence_identities(env.escrow / "evidence.key"), out=tmp_path / "x.mp4")
    assert list(tmp_path.glob("*.mp4")) == [] and list(tmp_path.glob(".*")) == []


def test_media_clock_restart_inside_an_incident_falls_back_to_wall_clock(env, tmp_path):
    a = encode_h264(10)
    b = encode_h264(10, first_seq=10, pts_base_us=0, wall_base=a[-1].wall_time + 1 / FPS)
    segments = cut(a + b, "inc-1")
    env.seal_all(segments)
    frames, _ = decoded(export(env, tmp_path / "x.mp4").mp4_path)
    assert [round(f.time, 3) for f in frames] == [round(i / FPS, 3) for i in range(20)]


def test_an_incident_cut_by_a_restart_exports_and_the_report_says_where_it_was_cut(env, frames_60, tmp_path):
    sealer = env.sealer()
    sealed = env.seal_all(cut(frames_60[:40], "inc-cut", final=False), sealer)
    last = json.loads(sealed[-1].manifest)
    marker = sealer.seal_end_marker(incident_id="inc-cut", segment_index=len(sealed), reason="restart",
                                    last_frame_time=last["end_time"], clock_sync="unsynchronized",
                                    sealed_at=1_750_000_100.0)
    (env.spool / marker.ciphertext_name).write_bytes(marker.ciphertext)
    (env.spool / marker.manifest_name).write_bytes(marker.manifest)
    result = export(env, tmp_path / "cut.mp4")
    frames, _ = decoded(result.mp4_path)
    assert len(frames) == 40
    assert result.complete and result.report["cut"]["stem"] == marker.stem
    assert result.report["cut"]["restart_time"] == "2025-06-15T15:08:20.000Z"
    assert result.report["cut"]["lost_up_to_s"] == pytest.approx(100.0 - 40 / FPS, abs=0.01)
    assert [r["kind"] for r in result.report["segments"]] == ["segment"] * 4 + ["incident_end"]
