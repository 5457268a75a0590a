"""Ring + recorder + segmenter over a pre-encoded 1080p30 10 Mbit/s stream, as fast as possible.

Reproduce:  .venv/bin/python bench/bench_capture.py [--minutes 5] [--pre-event 30]

A clip of real H.264 from the synthetic camera is encoded once (in a parent process, so that neither
the encoder nor PyAV counts against the memory figure); a child process with only the agent's
capture modules loaded replays it, and every replayed frame gets a fresh copy of its bytes, as a
camera hands the agent new buffers, so the ring's memory is measured honestly. The same replay loop without the recorder runs first in the same process: its time (the
"camera" cost of copying buffers) is the baseline subtracted from the pipeline's.

Reports: throughput as a multiple of real time, CPU seconds per recorded minute, peak RSS against
what the pre-event window must hold (target: >= 200x real time on one core; peak RSS <= window bytes
+ 1 GOP + 60 MB), and the same run through the recorder thread with its queue.
"""

from __future__ import annotations

import argparse
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.pipeline import RecorderThread
from agent.recorder import Action, Recorder, Trigger
from camera.frames import EncodedFrame
from camera.ring import PreEventRing
from camera.frames import StreamInfo

FPS = 30
INFO = StreamInfo("h264", 1920, 1080, float(FPS), 10_000_000, FPS, "synthetic")


def rss_now() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def replay(clip, count):
    """Fresh frames with fresh bytes and timestamps, like a camera delivering new buffers."""
    period = 1e6 / FPS
    n_clip = len(clip)
    for n in range(count):
        data, key = clip[n % n_clip]
        yield EncodedFrame(bytes(memoryview(data)), round(n * period), key, 1.7e9 + n / FPS, n)


class Tally:
    def __init__(self):
        self.segments = self.bytes = 0

    def __call__(self, segment):
        self.segments += 1
        self.bytes += segment.nbytes


def schedule(standby_frames, total):
    """(frame index → trigger): standby fills the window, then one long recording."""
    return {standby_frames: Action.START, total - 1: Action.STOP}


def run_direct(clip, total, standby, pre_event, with_recorder: bool):
    tally = Tally()
    recorder = Recorder(INFO, PreEventRing(pre_event, 256 << 20), 10.0, tally)
    triggers = schedule(standby, total)
    t0, c0 = time.perf_counter(), time.process_time()
    for i, frame in enumerate(replay(clip, total)):
        if with_recorder:
            action = triggers.get(i)
            if action:
                recorder.handle_trigger(Trigger(action, "bench"))
            recorder.handle_frame(frame)
    return time.perf_counter() - t0, time.process_time() - c0, tally


def run_threaded(clip, total, standby, pre_event):
    tally = Tally()
    recorder = Recorder(INFO, PreEventRing(pre_event, 256 << 20), 10.0, tally)
    thread = RecorderThread(recorder, queue_frames=3 * FPS)
    thread.start()
    triggers = schedule(standby, total)
    t0 = time.perf_counter()
    for i, frame in enumerate(replay(clip, total)):
        action = triggers.get(i)
        if action:
            thread.trigger(Trigger(action, "bench"))
        while thread._frames.full():  # pace to the consumer: this measures throughput, not drops
            time.sleep(0.0005)
        thread.offer(frame)
    thread.stop(timeout=60)
    return time.perf_counter() - t0, tally, thread.status.frames_lost


def write_clip(path: str, seconds: float) -> None:
    from camera.synthetic import SyntheticSource

    source = SyntheticSource(1920, 1080, FPS, 10_000_000, FPS, realtime=False)
    with open(path, "wb") as f:
        for frame in source.frames(round(seconds * FPS)):
            f.write(struct.pack("<I?", len(frame.data), frame.keyframe) + frame.data)


def read_clip(path: str):
    clip, data = [], Path(path).read_bytes()
    pos = 0
    while pos < len(data):
        size, key = struct.unpack_from("<I?", data, pos)
        pos += 5
        clip.append((data[pos:pos + size], key))
        pos += size
    return clip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0, help="recorded minutes (after the standby window)")
    parser.add_argument("--pre-event", type=float, default=30.0)
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--child", metavar="CLIP", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return measure(args, read_clip(args.child))
    print(f"command: .venv/bin/python bench/bench_capture.py --minutes {args.minutes:g} "
          f"--pre-event {args.pre_event:g} --clip-seconds {args.clip_seconds:g}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        clip_path = os.path.join(tmp, "clip.bin")
        write_clip(clip_path, args.clip_seconds)
        sys.exit(subprocess.call([sys.executable, __file__, "--child", clip_path, "--minutes", str(args.minutes),
                                  "--pre-event", str(args.pre_event), "--clip-seconds", str(args.clip_seconds)]))


def measure(args, clip) -> None:
    clip_bytes = sum(len(d) for d, _ in clip)
    bitrate = clip_bytes * 8 / args.clip_seconds
    gop_bytes = max(sum(len(d) for d, _ in clip[i:i + FPS]) for i in range(0, len(clip), FPS))
    window_bytes = bitrate / 8 * args.pre_event
    standby = round((args.pre_event + 5) * FPS)
    total = standby + round(args.minutes * 60 * FPS)
    video_s = total / FPS
    print(f"clip: {len(clip)} frames 1920x1080@{FPS}, {bitrate / 1e6:.1f} Mbit/s, largest GOP {gop_bytes / 1e6:.2f} MB; "
          f"run: {video_s:.0f} s of video ({standby / FPS:.0f} s standby, then recording)")

    base_wall, base_cpu, _ = run_direct(clip, total, standby, args.pre_event, with_recorder=False)
    rss_before = rss_now()
    reset_peak()
    wall, cpu, tally = run_direct(clip, total, standby, args.pre_event, with_recorder=True)
    peak = peak_rss()
    net_wall, net_cpu = wall - base_wall, cpu - base_cpu
    recorded_min = (total - standby) / FPS / 60
    print(f"baseline (replay + buffer copies only): {base_wall:.2f} s wall, {base_cpu:.2f} s CPU")
    print(f"ring+recorder+segmenter: {wall:.2f} s wall incl. baseline; net {net_wall:.2f} s")
    print(f"  throughput: {video_s / net_wall:.0f}x real time (net), {video_s / wall:.0f}x incl. buffer copies")
    print(f"  CPU per recorded minute: {net_cpu / recorded_min * 1000:.1f} ms net "
          f"({cpu / recorded_min * 1000:.1f} ms incl. copies); {tally.segments} segments, {tally.bytes / 1e6:.0f} MB")
    budget = window_bytes + gop_bytes + 60e6
    print(f"  memory: RSS before {rss_before / 1e6:.0f} MB, peak {peak / 1e6:.0f} MB "
          f"(growth {(peak - rss_before) / 1e6:.1f} MB); window {window_bytes / 1e6:.1f} MB + 1 GOP "
          f"{gop_bytes / 1e6:.1f} MB + 60 MB = {budget / 1e6:.0f} MB -> {'OK' if peak <= budget else 'OVER'}")

    t_wall, t_tally, lost = run_threaded(clip, total, standby, args.pre_event)
    print(f"through RecorderThread (queue hand-off, two threads): {t_wall:.2f} s wall, "
          f"{video_s / t_wall:.0f}x real time incl. copies; {t_tally.segments} segments, lost frames {lost}")


if __name__ == "__main__":
    main()
