"""Verification with public keys only: every kind of tampering is found and named."""

import json

import pytest

from evidence.keys import generate_device_key, load_device_public_keys
from evidence.verify import VerifyInputError, verify_paths

from .conftest import cut


@pytest.fixture
def sealed(env, frames_60):
    """Incident inc-1 in six segments, sealed into env.spool."""
    return env.seal_all(cut(frames_60, "inc-1"))


def bad(report):
    return {s.stem: s.problems for s in report.segments if not s.ok}


def flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_untouched_set_verifies(env, sealed):
    report = verify_paths([env.spool], env.devices)
    assert report.ok, report.lines()
    assert len(report.segments) == 6 and report.problems == ()
    doc = json.loads(report.to_json())
    assert doc["ok"] is True
    assert doc["incidents"] == [{"device_id": "kod-07", "incident_id": "inc-1", "segments": 6,
                                 "start_time": "2025-06-15T15:06:40.000Z", "end_time": "2025-06-15T15:06:42.000Z",
                                 "ok": True, "problems": [], "cut": None}]


def test_a_flipped_ciphertext_byte_names_the_segment(env, sealed):
    flip(env.spool / sealed[2].ciphertext_name, 500)
    report = verify_paths([env.spool], env.devices)
    assert not report.ok
    assert list(bad(report)) == [sealed[2].stem]
    assert "ciphertext SHA-256 does not match" in bad(report)[sealed[2].stem][0]


@pytest.mark.parametrize("field", ["incident_id", "signature", "seq"])
def test_a_flipped_manifest_byte_names_the_segment(env, sealed, field):
    path = env.spool / sealed[3].manifest_name
    raw = path.read_bytes()
    # flip a byte inside the value of one field, keeping the JSON well-formed
    start = raw.index(f'"{field}":'.encode()) + len(field) + 3
    data = bytearray(raw)
    data[start + 1] = ord("Q") if data[start + 1] != ord("Q") else ord("R")
    if field == "seq":
        data = bytearray(raw.replace(b'"seq":4', b'"seq":5'))
    path.write_bytes(bytes(data))
    report = verify_paths([env.spool], env.devices)
    assert not report.ok
    assert sealed[3].stem in bad(report)
    assert any("signature" in p for p in bad(report)[sealed[3].stem])
    # the segment no longer counts as verified, so the chain and the incident show the hole too
    assert any("seq 4 missing" in line for line in report.lines())


def test_a_deleted_middle_segment_is_a_gap(env, sealed):
    for name in (sealed[2].ciphertext_name, sealed[2].manifest_name):
        (env.spool / name).unlink()
    report = verify_paths([env.spool], env.devices)
    assert not report.ok
    lines = report.lines()
    assert "device kod-07: seq 3 missing or failed verification (gap between kod-07-0000000002 and " \
           "kod-07-0000000004)" in lines
    assert "device kod-07, incident inc-1: segment index 2 missing or failed verification" in lines
    assert report.problems_for("kod-07", "inc-1")


def test_a_deleted_final_segment_leaves_the_incident_incomplete(env, sealed):
    for name in (sealed[-1].ciphertext_name, sealed[-1].manifest_name):
        (env.spool / name).unlink()
    report = verify_paths([env.spool], env.devices)
    assert any("no final segment after index 4" in line for line in report.lines())


def test_only_a_missing_ciphertext_or_manifest(env, sealed):
    (env.spool / sealed[1].ciphertext_name).unlink()
    (env.spool / sealed[4].manifest_name).unlink()
    problems = bad(verify_paths([env.spool], env.devices))
    assert problems[sealed[1].stem] == ("ciphertext (.age file) missing",)
    assert problems[sealed[4].stem] == ("manifest missing (only the .age file was found)",)


def test_swapped_ciphertexts_are_named(env, sealed):
    a, b = env.spool / sealed[1].ciphertext_name, env.spool / sealed[2].ciphertext_name
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b), b.write_bytes(data_a)
    problems = bad(verify_paths([env.spool], env.devices))
    assert set(problems) == {sealed[1].stem, sealed[2].stem}
    assert f"the .age file is the ciphertext of segment {sealed[2].stem} (segments swapped)" in problems[sealed[1].stem]
    assert f"the .age file is the ciphertext of segment {sealed[1].stem} (segments swapped)" in problems[sealed[2].stem]


def test_swapped_whole_segments_are_found(env, sealed):
    s1, s2 = sealed[1].stem, sealed[2].stem
    for suffix in (".age", ".manifest.json"):
        (env.spool / f"{s1}{suffix}").rename(env.spool / f"tmp{suffix}")
        (env.spool / f"{s2}{suffix}").rename(env.spool / f"{s1}{suffix}")
        (env.spool / f"tmp{suffix}").rename(env.spool / f"{s2}{suffix}")
    problems = bad(verify_paths([env.spool], env.devices))
    assert set(problems) == {s1, s2}
    assert any("renamed or swapped" in p for p in problems[s1])


def test_a_segment_from_an_unenrolled_device(env, sealed, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    generate_device_key(other, device_id="kod-08")
    report = verify_paths([env.spool], load_device_public_keys([other]))
    assert len(bad(report)) == 6
    assert "not among the enrolled devices" in bad(report)[sealed[0].stem][0]


def test_a_device_key_enrolled_for_another_device_id(env, sealed):
    line = (env.device / "device.pub").read_text().replace("kod-07", "kod-99")
    (env.device / "device.pub").write_text(line)
    problems = bad(verify_paths([env.spool], env.devices))
    assert "enrolled for 'kod-99'" in problems[sealed[0].stem][0]


def test_several_directories_and_identical_copies(env, sealed, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for s in sealed[:2]:
        (copy / s.manifest_name).write_bytes(s.manifest)
        (copy / s.ciphertext_name).write_bytes(s.ciphertext)
    report = verify_paths([env.spool, copy], env.devices)
    assert report.ok
    assert any("identical copies" in n for n in report.notes)
    (copy / sealed[0].ciphertext_name).write_bytes(b"age-encryption.org/v1\nother")
    assert "2 different ciphertext files" in bad(verify_paths([env.spool, copy], env.devices))[sealed[0].stem][0]


def test_a_set_starting_mid_chain_fails_unless_the_caller_names_its_first_seq(env, frames_60):
    env.seal_all(cut(frames_60[:20], "inc-1"))
    later = env.seal_all(cut(frames_60[20:], "inc-2"))
    subset = env.root / "subset"
    subset.mkdir()
    for s in later:
        (subset / s.manifest_name).write_bytes(s.manifest)
        (subset / s.ciphertext_name).write_bytes(s.ciphertext)
    report = verify_paths([subset], env.devices)  # the oldest incident deleted looks just like this
    assert not report.ok
    assert [p.kind for p in report.problems] == ["start"]
    assert report.problems[0].message.startswith("device kod-07: this set starts at seq 3; seq 1..2 are not "
                                                 "included")
    report = verify_paths([subset], env.devices, first_seqs={None: 3})
    assert report.ok, report.lines()
    assert report.notes == ("device kod-07: seq 1..2 are not included and cannot be checked (--first-seq 3)",)
    report = verify_paths([subset], env.devices, first_seqs={"kod-07": 2})
    assert [p.message for p in report.problems] == [
        "device kod-07: seq 2 missing before the oldest segment held (kod-07-0000000003); the set was to start at "
        "seq 2"]


def test_no_segments_is_an_input_error(env, tmp_path):
    with pytest.raises(VerifyInputError, match="no sealed segments"):
        verify_paths([tmp_path], env.devices)
    with pytest.raises(VerifyInputError, match="no such file"):
        verify_paths([tmp_path / "nope"], env.devices)


def test_a_replaced_segment_with_a_valid_signature_breaks_the_chain(env, frames_60):
    """Two signed versions of seq 3 exist (a fork); putting the other one in place is found by seq 4's link."""
    segments = cut(frames_60, "inc-1")
    sealer = env.sealer()
    env.seal_all(segments[:2], sealer)
    kept = sealer.seal(segments[2], clock_sync="ntp-synced")
    other = sealer.seal(segments[2], clock_sync="unsynced")  # same seq and link, different content
    sealer.commit(kept)
    env.seal_all(segments[3:], sealer)
    (env.spool / other.manifest_name).write_bytes(other.manifest)
    (env.spool / other.ciphertext_name).write_bytes(other.ciphertext)
    report = verify_paths([env.spool], env.devices)
    assert bad(report) == {}
    assert report.lines() == ["kod-07-0000000004: previous-manifest hash does not match kod-07-0000000003 "
                              "(chain broken: a segment was replaced)"]
    assert report.problems_for("kod-07", "inc-1") == report.lines()


def test_an_end_marker_with_the_clock_behind_gives_no_bound(env, frames_60):
    sealer = env.sealer()
    sealed = env.seal_all(cut(frames_60[:20], "inc-1", final=False), sealer)
    last = json.loads(sealed[-1].manifest)
    marker = sealer.seal_end_marker(incident_id="inc-1", segment_index=2, reason="restart",
                                    last_frame_time=last["end_time"], clock_sync="unsynchronized",
                                    sealed_at=1_000_000_000.0)  # a Pi without RTC, before NTP
    (env.spool / marker.ciphertext_name).write_bytes(marker.ciphertext)
    (env.spool / marker.manifest_name).write_bytes(marker.manifest)
    report = verify_paths([env.spool], env.devices)
    assert report.ok, report.lines()
    [found] = report.cuts
    assert found.lost_up_to_s is None and "how much was lost is unknown" in found.message


def test_an_altered_end_marker_does_not_close_the_incident(env, frames_60):
    sealer = env.sealer()
    sealed = env.seal_all(cut(frames_60[:20], "inc-1", final=False), sealer)
    last = json.loads(sealed[-1].manifest)
    marker = sealer.seal_end_marker(incident_id="inc-1", segment_index=2, reason="restart",
                                    last_frame_time=last["end_time"], clock_sync="unsynchronized")
    (env.spool / marker.ciphertext_name).write_bytes(b"")
    forged = marker.manifest.replace(last["end_time"].encode(), b"2025-06-15T15:06:59.000Z")  # claim less was lost
    (env.spool / marker.manifest_name).write_bytes(forged)
    report = verify_paths([env.spool], env.devices)
    assert not report.ok and report.cuts == ()
    assert any("signature does not verify" in line for line in report.lines())
    assert any("no final segment" in line for line in report.lines())
