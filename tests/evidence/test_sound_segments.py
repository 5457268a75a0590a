"""Segments with sound (format /2): an MP4 that stock age + ffprobe open, verify and export with both tracks in sync.

The recording comes from the synthetic camera (a beep exactly at every frame numbered a multiple
of 30) through the pre-event ring and the segmenter, so the cuts, the pre-event boundary and the
pre-roll are the real ones.
"""

import json
import shutil
import subprocess

import numpy as np
import pytest

from camera.decode import beep_onsets
from camera.synthetic import read_counter
from evidence.export import export_incident
from evidence.keys import load_evidence_identities
from evidence.seal import FORMAT, FORMAT_AV, Manifest
from evidence.verify import verify_paths

from .conftest import AGE, record_with_sound

FPS = 30
FFPROBE = shutil.which("ffprobe")
needs_ffprobe = pytest.mark.skipif(FFPROBE is None, reason="stock ffprobe not installed (Debian package ffmpeg)")


@pytest.fixture(scope="module")
def recording():
    """An incident triggered at frame 100 with 2 s of pre-event (from frame 60), stopped at frame 220."""
    return record_with_sound()


def decode_file(path):
    """Pictures (burnt-in number, time in µs) and sound (samples, time of the first) of an MP4, as played."""
    import av

    pictures = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            pictures.append((read_counter(frame.to_ndarray(format="gray")), round(frame.time * 1e6)))
    chunks = []
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            chunks.append((round(frame.time * 1e6), frame.to_ndarray()[0]))
    rate = 48_000
    start = chunks[0][0]
    total = max(round((t - start) * rate / 1e6) + len(s) for t, s in chunks)
    samples = np.zeros(total, np.float32)
    for t, s in chunks:
        at = round((t - start) * rate / 1e6)
        samples[at:at + len(s)] = s
    return pictures, samples, start


def beep_offsets(pictures, samples, start_us):
    """(frame number, onset minus that frame's time) per beep. A segment's sound ends at the next
    segment's first picture and the packet across the cut starts in it, so a beep due with that next
    picture starts in this file too: it is measured against where that picture comes (one period on)."""
    due = {n: t for n, t in pictures if n is not None and n % FPS == 0}
    last_n, last_t = pictures[-1]
    if (last_n + 1) % FPS == 0:
        due[last_n + 1] = last_t + round(1e6 / FPS)
    result = []
    for onset in beep_onsets(samples, start_us, 48_000):
        n, at = min(due.items(), key=lambda kv: abs(kv[1] - onset))
        result.append((n, onset - at))
    return result


def ffprobe(path) -> dict:
    out = subprocess.run([FFPROBE, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def test_a_segment_without_sound_is_sealed_as_before(env, frames_60):
    from .conftest import cut

    sealed = env.seal_all(cut(frames_60, "inc-v1"))
    assert all(Manifest.parse(s.manifest).format == FORMAT for s in sealed)
    assert not any(Manifest.parse(s.manifest).has_audio for s in sealed)


@needs_ffprobe
def test_each_sealed_segment_opens_with_stock_age_and_plays_both_tracks_in_sync_alone(env, recording, tmp_path):
    source, segments = recording
    sealed = env.seal_all(segments)
    frame_us = source.audio.frame_us
    for seg, s in zip(segments, sealed):
        m = Manifest.parse(s.manifest)
        assert m.format == FORMAT_AV and m.audio["codec"] == "aac" and m.audio_packets == len(seg.audio)
        assert m.audio_from_us == seg.audio_from_us - seg.start_pts_us and m.audio_preroll
        plain = tmp_path / f"{s.stem}.mp4"  # the back office's side: plaintext on its disk is its choice
        subprocess.run([AGE, "-d", "-i", str(env.identity), "-o", str(plain), str(env.spool / s.ciphertext_name)],
                       check=True)
        info = ffprobe(plain)
        kinds = {st["codec_type"]: st for st in info["streams"]}
        assert kinds["video"]["codec_name"] == "h264" and kinds["audio"]["codec_name"] == "aac"
        assert kinds["audio"]["sample_rate"] == "48000" and kinds["audio"]["channels"] == 1
        audio_s = float(kinds["audio"]["duration"])
        expected = (seg.audio_duration_us + seg.audio_preroll.duration_us) / 1e6
        assert audio_s == pytest.approx(expected, abs=1e-3)
        pictures, samples, start = decode_file(plain)
        assert [n for n, _ in pictures] == [f.seq for f in seg.frames]
        offsets = beep_offsets(pictures, samples, start)
        print(f"segment {seg.index} (frames {seg.first_seq}-{seg.last_seq}), alone: beeps {offsets}, "
              f"sound {audio_s:.4f} s")
        assert offsets and all(abs(off) <= frame_us for _, off in offsets)


@needs_ffprobe
def test_the_exported_mp4_has_both_tracks_in_sync_and_the_sound_as_long_as_the_pictures(env, recording, tmp_path):
    source, segments = recording
    env.seal_all(segments)
    report = verify_paths([env.spool], env.devices)
    assert report.ok, report.lines()
    out = tmp_path / "incident.mp4"
    export_incident([env.spool], devices=env.devices, identities=load_evidence_identities(env.identity), out=out)
    info = ffprobe(out)
    kinds = {st["codec_type"]: st for st in info["streams"]}
    assert kinds["video"]["codec_name"] == "h264" and kinds["audio"]["codec_name"] == "aac"
    assert kinds["audio"]["profile"] == "LC"
    assert int(kinds["audio"]["nb_frames"]) == sum(len(s.audio) for s in segments)  # no pre-roll doubled
    pictures, samples, start = decode_file(out)
    assert [n for n, _ in pictures] == list(range(60, 220))
    offsets = beep_offsets(pictures, samples, start)
    print("exported incident: beeps (frame number, offset µs):", offsets)
    # 60's beep began in the first segment's pre-roll: the sound starts during it (at most a frame late)
    assert [n for n, _ in offsets] == [60, 90, 120, 150, 180, 210]
    assert all(abs(off) <= source.audio.frame_us for _, off in offsets)
    video_us = segments[-1].end_pts_us - segments[0].start_pts_us
    audio_us = float(kinds["audio"]["duration"]) * 1e6
    print(f"exported: video {video_us} µs, audio {audio_us:.0f} µs")
    assert abs(audio_us - video_us) <= source.audio.frame_us
    subprocess.run([shutil.which("ffmpeg"), "-v", "error", "-i", str(out), "-f", "null", "-"], check=True)
