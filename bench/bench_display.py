"""The big front displays: render + convert + push per frame for each size class, the colour TFT's CPU
share at 15 frames/s, and the recording path's timings with the display on and off in the same run.

Reproduce:  .venv/bin/python bench/bench_display.py [--seconds 10] [--frames 300]

1. Cost per frame of the RECORDING screen (the busiest: live picture, frame, band, elapsed time),
   each frame from a different lores preview of the synthetic camera (128x72, YUV420 planes as the
   Pi's lores stream delivers them), pushed to luma's real driver over a null SPI bus (the transfer
   itself is not measured; on the Pi it is DMA in the kernel) with gpiozero's mock pins. Classes:
   1-bit 128x64 (ssd1306 over null I2C, for reference), grey 256x64 (ssd1322), colour 128x128
   (ssd1351), colour 320x240 (st7789 fed RGB565 by ui.spi). Printed: ms per frame and the share
   of one core at the class's target rate.
2. CPU share of a DisplayThread driving the 320x240 TFT at 15 frames/s for ``--seconds`` (process
   CPU time against wall time, the main thread asleep). Target: <= 3 % of one core.
3. The recording path with the display off, then on (the same TFT thread at 15 frames/s), in the
   same process: a 1080p30 H.264 clip replayed in real time through the recorder (ring, segmenter),
   time per ``handle_frame`` (median, p99) and frames late. The display may not change them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from gpiozero.pins.mock import MockFactory, MockPWMPin  # noqa: E402
from luma.core.interface.serial import i2c  # noqa: E402

from agent.recorder import Action, Recorder, Trigger  # noqa: E402
from camera.frames import EncodedFrame, StreamInfo  # noqa: E402
from camera.ring import PreEventRing  # noqa: E402
from camera.synthetic import SyntheticSource, TestPattern  # noqa: E402
from ui.display import DisplayThread, open_device, screen_spec  # noqa: E402
from ui.oled import FastSSD1306  # noqa: E402
from ui.screens import render  # noqa: E402
from ui.settings import DisplayConfig  # noqa: E402
from ui.state import OfficerState  # noqa: E402

from bench_ui import per_frame_ms  # noqa: E402  (one way to time a frame, shared with the 1-bit bench)
from ui.view import OfficerView  # noqa: E402

NOW = 1_700_000_000.0
CLASSES = {  # label: (config, target frames/s)
    "1-bit 128x64 (ssd1306, I2C)": (DisplayConfig(driver="ssd1306"), 10.0),
    "grey 256x64 (ssd1322)": (DisplayConfig(driver="ssd1322", width=256, height=64), 20.0),
    "colour 128x128 (ssd1351)": (DisplayConfig(driver="ssd1351", width=128, height=128), 15.0),
    "colour 320x240 (st7789, RGB565)": (DisplayConfig(driver="st7789", width=320, height=240), 15.0),
}
TFT = DisplayConfig(driver="st7789", width=320, height=240)
TFT_FPS = 15.0


class NullSpi:
    """spidev.SpiDev's surface luma uses; accepts everything."""

    max_speed_hz = mode = 0

    def open(self, port, device):
        pass

    def writebytes(self, data):
        pass

    def close(self):
        pass


class NullI2C:
    def write_i2c_block_data(self, address, register, data):
        pass

    def close(self):
        pass


def previews(count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Lores YUV420 planes of the synthetic camera's pattern, 128x72, one per frame."""
    pattern = TestPattern(640, 360, 30.0)
    out = []
    for n in range(count):
        y, u, v = pattern.planes(n, NOW + n / 30)
        out.append((y[::5, ::5].copy(), u[::5, ::5].copy(), v[::5, ::5].copy()))
    return out


def recording_view(preview, n: int) -> OfficerView:
    return OfficerView(OfficerState.RECORDING, now=NOW + n / 15, clock="09:41", recording_since=NOW - 83,
                       preview=preview)


def open_panel(cfg: DisplayConfig, pins):
    if cfg.driver == "ssd1306":
        return FastSSD1306(i2c(bus=NullI2C()))
    return open_device(cfg, spi=NullSpi(), pin_factory=pins)


def cost_per_frame(frames: int, pins) -> None:
    planes = previews(60)
    print("\n1. cost per frame, RECORDING screen from the 128x72 lores preview (ms; % of one core at the target rate)")
    for label, (cfg, fps) in CLASSES.items():
        spec = screen_spec(cfg)
        device = open_panel(cfg, pins)
        mode = device.mode

        def only_render(n, spec=spec):
            preview = planes[n % len(planes)]
            render(recording_view(preview if spec.mode == "RGB" else preview[0], n), spec)

        def render_push(n, spec=spec, device=device, mode=mode):
            preview = planes[n % len(planes)]
            device.display(render(recording_view(preview if spec.mode == "RGB" else preview[0], n), spec).convert(mode))

        r = per_frame_ms(only_render, frames)
        p = per_frame_ms(render_push, frames)
        print(f"   {label:34s} render {r:6.2f} ms   render+convert+push {p:6.2f} ms   "
              f"at {fps:4.0f} frames/s: {p * fps / 10:5.1f} % of one core")
        device.cleanup()


def tft_thread(pins, fps: float) -> DisplayThread:
    planes = previews(60)
    counter = [0]

    def snapshot():
        counter[0] += 1
        return OfficerView(OfficerState.RECORDING, now=time.time(), clock="09:41", recording_since=NOW,
                           preview=planes[counter[0] % len(planes)])

    spec = screen_spec(TFT)
    return DisplayThread(lambda: open_device(TFT, spi=NullSpi(), pin_factory=pins), snapshot,
                         lambda v: render(v, spec), fps=fps)


def cpu_share(seconds: float, pins) -> None:
    thread = tft_thread(pins, TFT_FPS)
    thread.start()
    time.sleep(1.0)  # warm-up: fonts cached, first frames out
    cpu0, wall0, pushed0 = time.process_time(), time.perf_counter(), thread.frames_pushed
    time.sleep(seconds)
    cpu1, wall1, pushed1 = time.process_time(), time.perf_counter(), thread.frames_pushed
    thread.stop()
    wall = wall1 - wall0
    print(f"\n2. DisplayThread, 320x240 TFT at {TFT_FPS:g} frames/s for {seconds:g} s: "
          f"{100 * (cpu1 - cpu0) / wall:.2f} % of one core, {(pushed1 - pushed0) / wall:.1f} frames/s pushed "
          f"(target <= 3 %)")


def clip_1080p(frames: int) -> list[tuple[bytes, bool]]:
    source = SyntheticSource(1920, 1080, 30.0, 10_000_000, 30, realtime=False)
    return [(f.data, f.keyframe) for f in source.frames(frames)]


def recording_path(clip, seconds: float, display: DisplayThread | None) -> tuple[float, float, int]:
    """Replay ``clip`` at 30 frames/s through the recorder; (median ms, p99 ms, frames late) per handle_frame."""
    info = StreamInfo("h264", 1920, 1080, 30.0, 10_000_000, 30, "synthetic")
    recorder = Recorder(info, PreEventRing(5.0, 256 << 20), 10.0, lambda segment: None)
    if display is not None:
        display.start()
        time.sleep(1.0)
    total = round(seconds * 30)
    durations, late = [], 0
    t0 = time.perf_counter()
    for n in range(total):
        due = t0 + n / 30
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1 / 30:
            late += 1
        data, key = clip[n % len(clip)]
        frame = EncodedFrame(bytes(memoryview(data)), round(n * 1e6 / 30), key, NOW + n / 30, n)
        if n == 30:
            recorder.handle_trigger(Trigger(Action.START, "bench"))
        start = time.perf_counter()
        recorder.handle_frame(frame)
        durations.append((time.perf_counter() - start) * 1e3)
    if display is not None:
        display.stop()
    durations.sort()
    return statistics.median(durations), durations[int(0.99 * (len(durations) - 1))], late


def recording_unchanged(seconds: float, pins) -> None:
    clip = clip_1080p(60)
    off = recording_path(clip, seconds, None)
    on = recording_path(clip, seconds, tft_thread(pins, TFT_FPS))
    print(f"\n3. recording path, 1080p30 replayed in real time for {seconds:g} s (handle_frame per frame)")
    for label, (median, p99, late) in (("display off", off), (f"TFT at {TFT_FPS:g} frames/s", on)):
        print(f"   {label:24s} median {median:6.3f} ms   p99 {p99:6.3f} ms   frames late {late}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"load {os.getloadavg()[0]:.2f}")
    pins = MockFactory(pin_class=MockPWMPin)
    cost_per_frame(args.frames, pins)
    cpu_share(args.seconds, pins)
    recording_unchanged(args.seconds, pins)
    return 0


if __name__ == "__main__":
    sys.exit(main())
