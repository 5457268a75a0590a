"""`bodycam demo`: the capture chain on a laptop, in real time, with nothing to set up.

The synthetic camera fills the pre-event ring, a recording is triggered as the button would, the
segments are cut, and each one is decoded back to prove it plays on its own with no frame missing.
Nothing is written to disk: plaintext video never leaves RAM, and sealing (encryption to the
municipality's key) is the next stage of the chain.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time

from camera.ring import PreEventRing
from camera.source import open_source

from .config import Config
from .pipeline import RecorderThread
from .recorder import Action, Recorder, Trigger

logger = logging.getLogger(__name__)


def run_demo(config: Config, standby_s: float, record_s: float, out=sys.stdout) -> int:
    camera = dataclasses.replace(config.camera, backend="synthetic", synthetic_realtime=True)
    rec = config.recording
    source = open_source(camera)
    segments = []
    recorder = Recorder(source.info, PreEventRing(rec.pre_event_seconds, int(rec.pre_event_max_mib * 2**20)),
                        rec.segment_seconds, segments.append, rec.post_event_seconds, source.request_keyframe)
    thread = RecorderThread(recorder, round(rec.capture_queue_seconds * camera.fps))
    info = source.info
    print(f"camera: synthetic {info.width}x{info.height} @ {info.fps:g} fps, {info.bitrate / 1e6:g} Mbit/s, "
          f"keyframe every {info.gop_frames} frames", file=out)
    print(f"pre-event window {rec.pre_event_seconds:g} s, segments of {rec.segment_seconds:g} s; "
          f"standby {standby_s:g} s, then recording {record_s:g} s", file=out)
    thread.start()
    source.start(thread.offer)
    try:
        _progress(thread, standby_s, out)
        thread.trigger(Trigger(Action.START, "demo"))
        _progress(thread, record_s, out)
        thread.trigger(Trigger(Action.STOP, "demo"))
        _progress(thread, rec.post_event_seconds + 0.5, out)
    finally:
        source.stop()
        thread.stop()
    print("", file=out)
    return _report(segments, thread, out)


def _progress(thread: RecorderThread, seconds: float, out) -> None:
    """A live status line on a terminal; one line per second into a log or pipe."""
    tty = out.isatty()
    end = time.monotonic() + seconds
    while True:
        status = thread.status
        ring = status.ring
        elapsed = f"{time.time() - status.recording_since:5.1f} s" if status.recording_since else "      "
        line = (f"  {status.state.value:<10}{elapsed} ring {ring.seconds_held:5.1f} s / "
                f"{ring.memory_bytes / 2**20:6.1f} MiB  segments {status.segments_emitted:3d}  "
                f"lost frames {status.frames_lost}")
        print("\r" + line if tty else line, end="" if tty else "\n", file=out, flush=True)
        left = end - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(0.25 if tty else 1.0, left))
    if tty:
        print("", file=out)


def _report(segments, thread: RecorderThread, out) -> int:
    from camera.decode import decode_frame_numbers

    if not segments:
        print("no segment was recorded", file=out)
        return 1
    ok = True
    previous = None
    for segment in segments:
        numbers = decode_frame_numbers(segment.payload())
        expected = [f.seq for f in segment.frames]
        good = numbers == expected
        joined = previous is None or segment.first_seq == previous + 1 or segment.dropped_frames
        ok &= good and bool(joined)
        previous = segment.last_seq
        print(f"segment {segment.index}: {segment.frame_count:4d} frames, {segment.duration_s:5.2f} s, "
              f"{segment.nbytes / 1e6:5.2f} MB, pre-event {segment.pre_event_frames:3d} frames, "
              f"decodes {'OK' if good else 'FAILED'}{', final' if segment.final else ''}", file=out)
    print(f"incident {segments[0].incident_id}: {len(segments)} segments, frames "
          f"{segments[0].first_seq}..{segments[-1].last_seq}, "
          f"{'continuous' if ok else 'NOT continuous'}; frames lost: {thread.status.frames_lost}", file=out)
    print("nothing was written to disk (sealing to the municipality's key comes next in the chain)", file=out)
    return 0 if ok else 1
