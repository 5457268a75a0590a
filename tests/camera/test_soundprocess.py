"""The running synthetic camera's sound comes from a child process, in batches, still in lock-step."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from camera.soundprocess import SoundProcess
from camera.synthaudio import SyntheticAudio

from test_synthaudio import beep_offsets_us, split


def frame_times(count, fps=30.0, jitter_us=0):
    """Picture times as a paced camera stamps them: nominal, plus some scheduling lateness."""
    return [round(n * 1e6 / fps) + (n * 7919 % jitter_us if jitter_us else 0) for n in range(count)]


@pytest.mark.parametrize("batch_us", [0, 200_000, 900_000])
def test_the_child_makes_the_same_packets_as_the_agents_own_process_whatever_the_batch(batch_us):
    """Lock-step does not depend on batching: the child renders exactly up to the picture times it is told."""
    times = frame_times(100, jitter_us=3000)
    beeps = [n % 30 == 0 for n in range(len(times))]
    local = SyntheticAudio(48_000)
    expected = [p for t, b in zip(times, beeps) for p in local.advance(t, b)]
    got, ended = [], []
    sound = SoundProcess(48_000, got.append, ended.append, batch_us=batch_us)
    sound.start()
    for t, b in zip(times, beeps):
        sound.advance(t, b)
    sound.close()
    assert ended == []
    assert [(p.pts_us, p.duration_us, p.seq, p.data) for p in got] == \
           [(p.pts_us, p.duration_us, p.seq, p.data) for p in expected]
    assert len(got) > 100  # 3.3 s of sound, 47 packets a second, up to the last picture


def test_a_child_that_dies_is_reported_once_with_its_reason():
    ended, done = [], threading.Event()

    def on_end(reason):
        ended.append(reason)
        done.set()

    sound = SoundProcess(48_000, lambda packet: None, on_end)
    sound.start()
    sound.advance(0, True)
    os.kill(sound.pid, signal.SIGKILL)
    assert done.wait(10)
    for n in range(1, 30):
        sound.advance(n * 33_333, False)  # the camera goes on: no error, no waiting
    sound.close()
    assert ended == [f"exit status {-signal.SIGKILL}"]


def test_a_child_that_cannot_encode_says_why():
    ended, done = [], threading.Event()
    sound = SoundProcess(-5, lambda packet: None, lambda reason: (ended.append(reason), done.set()))
    sound.start()
    assert done.wait(30)
    sound.close()
    assert len(ended) == 1 and "Error" in ended[0], ended


def test_a_running_camera_with_sound_keeps_pyav_out_of_the_agents_process():
    """Replayed pictures and the test tone are both encoded by children; the packets still beep with their frames."""
    script = (
        "import sys, threading\n"
        "sys.path.insert(0, 'tests/camera')\n"
        "from camera.synthetic import SyntheticSource\n"
        "from camera.frames import EncodedFrame, AudioPacket\n"
        "src = SyntheticSource(160, 120, 30.0, 200_000, 30, realtime=True, replay_seconds=3.0, max_frames=65,\n"
        "                      audio_bitrate=48_000)\n"
        "items, lock = [], threading.Lock()\n"
        "def keep(item):\n"
        "    with lock:\n"
        "        items.append(item)\n"
        "src.start(keep, keep)\n"
        "assert src.wait(60)\n"
        "src.stop()\n"
        "loaded = 'av' in sys.modules\n"
        "from test_synthaudio import beep_offsets_us, split\n"
        "frames, audio = split(items)\n"
        "print(loaded, src.audio_fault, len(frames), audio[-1].end_us > frames[-1].pts_us - 3 * 21334,\n"
        "      beep_offsets_us(frames, audio, src.audio))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    print("beep offsets, sound from the child (frame number, µs):", proc.stdout)
    loaded, fault, frames, complete, offsets = proc.stdout.split(maxsplit=4)
    assert (loaded, fault, frames, complete) == ("False", "None", "65", "True")
    offsets = eval(offsets)  # noqa: S307 (our own child's repr of a list of tuples)
    assert [n for n, _ in offsets] == [0, 30, 60]
    assert all(abs(off) <= 21_334 for _, off in offsets)


def test_sound_of_a_running_camera_arrives_in_batches_in_step_with_its_frames(small_source):
    source = small_source(audio_bitrate=48_000, realtime=True, max_frames=65)
    items, lock = [], threading.Lock()
    arrivals = []

    def keep(item):
        with lock:
            items.append(item)
            arrivals.append(threading.current_thread().name)

    source.start(keep, keep)
    assert source.wait(30)
    source.stop()
    frames, audio = split(items)
    assert source.audio_fault is None and len(frames) == 65
    assert {name for name, item in zip(arrivals, items) if not hasattr(item, "keyframe")} == {"SoundProcessReader"}
    assert [p.seq for p in audio] == list(range(len(audio)))
    offsets = beep_offsets_us(frames, audio, source.audio)
    assert [n for n, _ in offsets] == [0, 30, 60] and all(abs(off) <= source.audio.frame_us for _, off in offsets)
