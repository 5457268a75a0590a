"""Synthetic camera: a moving test pattern encoded to H.264 with libx264 (PyAV), for laptops and CI.

It produces the same kind of stream as the Pi's hardware encoder: Annex-B access units, no B-frames,
a fixed GOP, SPS/PPS in front of every IDR. Each picture carries its frame number twice as a row of
black/white blocks (the second row inverted, as a checksum), so a test can decode any segment and
prove that no frame was lost or repeated; a burnt-in clock and counter make it readable to people.
With ``audio_bitrate`` it also records sound in lock-step (:mod:`camera.synthaudio`): a beep starts
exactly at every frame whose burnt-in number is a multiple of the (rounded) frame rate. A running
camera has its sound rendered and encoded by a child process (:mod:`camera.soundprocess`), as it has
its replay clip encoded; :meth:`SyntheticSource.media` renders it in the caller's process.
"""

from __future__ import annotations

import importlib.util
import logging
import struct
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from typing import Iterator

import numpy as np

from base.errors import CameraUnavailableError

from .childproc import python_module
from .frames import AudioPacket, EncodedFrame, StreamInfo
from .pyav import import_av as _import_av
from .soundprocess import SoundProcess
from .source import AudioCallback, FrameCallback, FrameSource
from .synthaudio import describe as describe_sound

logger = logging.getLogger(__name__)

COUNTER_BITS = 32
PREVIEW_WIDTH = 128
#: A real-time source this far behind its schedule says so (once) in the log.
BEHIND_WARN_S = 0.5


def counter_cell(width: int) -> int:
    """Edge length in pixels of one counter block; large enough to survive any sane bitrate."""
    return min(24, max(4, (width // 20) // 2 * 2))


def _counter_cells(width: int):
    """(bit index, row slice, column slice of the bit, column slice of its inverted copy)."""
    c = counter_cell(width)
    for i in range(COUNTER_BITS):
        row, col = divmod(i, 8)
        rows = slice((1 + row) * c, (2 + row) * c)
        yield i, rows, slice((1 + col) * c, (2 + col) * c), slice((10 + col) * c, (11 + col) * c)


def chroma_planes(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The pattern's U and V planes, which never move: a neutral picture with its left quarter tinted."""
    u = np.full((height // 2, width // 2), 128, np.uint8)
    v = np.full((height // 2, width // 2), 128, np.uint8)
    v[:, : width // 4] = 160
    return u, v


class TestPattern:
    """Builds the Y, U and V planes of frame ``n``: diagonal stripes, a moving bar, the counter."""

    def __init__(self, width: int, height: int, fps: float):
        self.width, self.height, self.fps = width, height, fps
        self.cell = counter_cell(width)
        yy, xx = np.mgrid[0:height, 0:width]
        self._base = ((xx + yy) // 2 % 256).astype(np.uint8)
        self._u, self._v = chroma_planes(width, height)
        # A band of film-grain-like noise keeps the encoder busy at a realistic bitrate; a pure
        # gradient would compress to a fraction of what a real street scene costs.
        rng = np.random.default_rng(20261124)
        self._band = slice(height // 3, height // 3 + height // 4)
        self._noise = rng.integers(0, 64, (height // 4, width + 64), dtype=np.uint8)
        self._font = None

    def planes(self, n: int, wall_time: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = self._base + np.uint8((n * 3) % 256)  # uint8 arithmetic wraps: stripes drift each frame
        bar = self.width // 16
        x0 = (n * 8) % max(1, self.width - bar)
        shift = (n * 37) % 64
        y[self._band] += self._noise[:, shift : shift + self.width]
        y[:, x0 : x0 + bar] = 235
        self._draw_counter(y, n)
        self._draw_clock(y, n, wall_time)
        return y, self._u, self._v

    def _draw_counter(self, y: np.ndarray, n: int) -> None:
        """32 bits as an 8x4 grid of blocks, and the same grid inverted beside it as a check."""
        c = self.cell
        y[0 : 6 * c, 0 : 20 * c] = 128
        for i, rows, cols, inverted in _counter_cells(self.width):
            bit = (n >> (COUNTER_BITS - 1 - i)) & 1
            y[rows, cols] = 235 if bit else 16
            y[rows, inverted] = 16 if bit else 235

    def _draw_clock(self, y: np.ndarray, n: int, wall_time: float) -> None:
        from PIL import Image, ImageDraw, ImageFont

        size = max(10, self.height // 18)
        if self._font is None:
            try:
                self._font = ImageFont.load_default(size=size)
            except (TypeError, OSError):  # Pillow without FreeType: fixed bitmap font
                self._font = ImageFont.load_default()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall_time))
        text = f"{stamp}.{int(wall_time * 1000) % 1000:03d}  #{n}"
        h = size + 6
        label = Image.new("L", (min(self.width, size * len(text)), h), 16)
        ImageDraw.Draw(label).text((3, 2), text, fill=235, font=self._font)
        top = self.height - h - 2
        arr = np.asarray(label)
        y[top : top + h, : arr.shape[1]] = arr


def read_counter(luma: np.ndarray) -> int | None:
    """The frame number burnt into a decoded luma plane, or None when the blocks do not check out."""
    value = 0
    for _, rows, cols, inverted in _counter_cells(luma.shape[1]):
        bit = luma[rows, cols].mean() > 128
        if bit == (luma[rows, inverted].mean() > 128):
            return None
        value = (value << 1) | int(bit)
    return value


class SyntheticEncoder:
    """libx264 set up like the Pi's encoder: Annex-B, fixed GOP, no B-frames, headers on every IDR."""

    def __init__(self, width: int, height: int, fps: float, bitrate: int, gop: int):
        av = _import_av()
        self._av = av
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = Fraction(1, 1_000_000)
        ctx.framerate = Fraction(fps).limit_denominator(1001)
        ctx.bit_rate = bitrate
        ctx.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1:forced-idr=1"
                           f":vbv-maxrate={bitrate // 1000}:vbv-bufsize={bitrate // 1000}",
        }
        ctx.open()
        self._ctx = ctx
        self._frame = av.VideoFrame(width, height, "yuv420p")

    def encode(self, planes, pts_us: int, force_keyframe: bool) -> list:
        frame = self._frame
        for plane, data in zip(frame.planes, planes):
            _copy_plane(plane, data)
        frame.pts = pts_us
        frame.pict_type = self._av.video.frame.PictureType.I if force_keyframe else \
            self._av.video.frame.PictureType.NONE
        return list(self._ctx.encode(frame))


def _copy_plane(plane, data: np.ndarray) -> None:
    """Copy a numpy image into an AVFrame plane whose rows may be padded."""
    h, w = data.shape
    if plane.line_size == w:
        plane.update(np.ascontiguousarray(data))
    else:
        dst = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        dst[:h, :w] = data


class SyntheticSource(FrameSource):
    """The test-pattern camera: real-time paced or as fast as the machine encodes.

    Real-time frames are stamped with the time they are handed over (like a camera's sensor
    timestamps); :meth:`frames` (unpaced) stamps the nominal rate.

    With ``replay_seconds`` it encodes that much once and then replays the packets with fresh
    timestamps, so long soaks and benchmarks cost almost no CPU; frame numbers then repeat per loop.
    """

    def __init__(self, width=1920, height=1080, fps=30.0, bitrate=10_000_000, gop_frames=None,
                 realtime=True, replay_seconds=0.0, max_frames=None, audio_bitrate: int | None = None):
        gop = gop_frames or max(1, round(fps))
        super().__init__(StreamInfo("h264", width, height, float(fps), bitrate, gop, "synthetic"))
        self.realtime = realtime
        self.replay_seconds = replay_seconds
        self.max_frames = max_frames
        self._keyframe_wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames_emitted = 0
        self.audio_bitrate = audio_bitrate
        self._sound: SoundProcess | None = None
        if audio_bitrate:
            self.audio = describe_sound(audio_bitrate)

    @classmethod
    def from_config(cls, camera, audio=None) -> "SyntheticSource":
        return cls(camera.width, camera.height, camera.fps, camera.bitrate, camera.keyframe_interval,
                   camera.synthetic_realtime, camera.synthetic_replay_seconds,
                   audio_bitrate=audio.bitrate if audio is not None and audio.enabled else None)

    # -- FrameSource -------------------------------------------------------------------------------
    def start(self, on_frame: FrameCallback, on_audio: AudioCallback | None = None) -> None:
        if self._thread is not None:
            raise RuntimeError("source already started")
        if self.replay_seconds > 0:  # the clip is encoded in a child: PyAV need not load in this process
            if importlib.util.find_spec("av") is None:
                _import_av()  # raises with the clear message
        else:
            _import_av()  # fail here, on the caller's thread, with a clear message
        self._stopping.clear()
        if self.audio is not None and on_audio is not None:
            self._sound = SoundProcess(self.audio_bitrate, on_audio, self._sound_ended)
            self._sound.start()
        self._thread = threading.Thread(target=self._run, args=(on_frame,), name="SyntheticCameraThread",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error("synthetic camera thread did not stop within %.1f s", timeout)
            self._thread = None
        if self._sound is not None:  # after the camera thread: the sound up to its last picture comes in
            self._sound.close()
            self._sound = None

    def _sound_ended(self, reason: str) -> None:
        """The sound process ended early (on its reader thread): the pictures go on, the fault shows."""
        self.audio_fault = f"the synthetic camera's sound process ended ({reason}); recording pictures without sound"
        logger.error("%s", self.audio_fault)

    def request_keyframe(self) -> None:
        self._keyframe_wanted.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a source with ``max_frames`` has produced them all; True when finished."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # -- frame production --------------------------------------------------------------------------
    def frames(self, count: int | None = None, start_wall: float | None = None) -> Iterator[EncodedFrame]:
        """Generate frames on the calling thread (no pacing) — for tests and benchmarks."""
        for frame, _ in self._numbered(count, start_wall):
            yield frame

    def media(self, count: int | None = None, start_wall: float | None = None
              ) -> Iterator[EncodedFrame | AudioPacket]:
        """Frames and, for a source with sound, its audio packets in the order the camera hands them over."""
        audio = self._new_audio()
        for frame, number in self._numbered(count, start_wall):
            if audio is not None:
                yield from audio.advance(frame.pts_us, self._beeps(number))
            yield frame

    def _numbered(self, count, start_wall) -> Iterator[tuple[EncodedFrame, int]]:
        """Frames stamped at the nominal rate, each with the number burnt into its picture."""
        source = self._replay() if self.replay_seconds > 0 else self._live()
        wall0 = time.time() if start_wall is None else start_wall
        period_us = 1_000_000 / self.info.fps
        n = 0
        for data, keyframe, number in source:
            if count is not None and n >= count:
                return
            pts = round(n * period_us)
            yield EncodedFrame(data, pts, keyframe, wall0 + pts / 1e6, n), number
            n += 1

    def _new_audio(self):
        if not self.audio_bitrate:
            return None
        from .synthaudio import SyntheticAudio

        return SyntheticAudio(self.audio_bitrate)

    def _beeps(self, number: int) -> bool:
        """A beep starts with every frame whose burnt-in number is a multiple of the frame rate."""
        return number % max(1, round(self.info.fps)) == 0

    def _live(self, on_preview=None) -> Iterator[tuple[bytes, bool, int]]:
        on_preview = on_preview or self._set_preview
        info = self.info
        pattern = TestPattern(info.width, info.height, info.fps)
        encoder = SyntheticEncoder(info.width, info.height, info.fps, info.bitrate, info.gop_frames)
        period_us = 1_000_000 / info.fps
        wall0 = time.time()
        n = 0
        while True:
            pts = round(n * period_us)
            planes = pattern.planes(n, wall0 + pts / 1e6)
            if n % max(1, round(info.fps / 10)) == 0:
                on_preview(_preview_planes(planes, PREVIEW_WIDTH))
            force = self._keyframe_wanted.is_set()
            self._keyframe_wanted.clear()
            packets = encoder.encode(planes, pts, force)
            if len(packets) != 1:
                raise RuntimeError(f"encoder returned {len(packets)} packets for one frame (expected 1)")
            packet = packets[0]
            yield bytes(packet), bool(packet.is_keyframe), n
            n += 1

    def _replay(self) -> Iterator[tuple[bytes, bool, int]]:
        clip_frames = max(self.info.gop_frames, round(self.replay_seconds * self.info.fps))
        clip_frames -= clip_frames % self.info.gop_frames  # loop on a GOP boundary
        clip = _encode_clip_in_child(self.info, clip_frames, self._stopping)
        if clip is None:
            return  # stopped while the clip was being encoded
        logger.info("synthetic camera: replaying a pre-encoded clip of %d frames (%.1f MB)",
                    len(clip), sum(len(d) for d, _, _ in clip) / 1e6)
        # The pattern's chroma does not move: the child pipes the luma of each preview, the colour is added here
        # (from the chroma alone: a whole 1080p pattern would cost the agent ~60 MB at its peak to make).
        u, v = _downscaled(chroma_planes(self.info.width, self.info.height), self.info.width, PREVIEW_WIDTH)
        while True:
            for number, (data, keyframe, preview) in enumerate(clip):
                if self._keyframe_wanted.is_set() and not keyframe:
                    continue  # a forced keyframe in replay: skip ahead to the clip's next IDR
                self._keyframe_wanted.clear()
                if preview is not None:
                    self._set_preview((preview, u, v))
                yield data, keyframe, number

    def _run(self, on_frame: FrameCallback) -> None:
        t0: float | None = None  # the clock starts with the first frame, once the replay clip is encoded
        period = 1.0 / self.info.fps
        behind_logged = False
        sound = self._sound
        try:
            for frame, number in self._numbered(self.max_frames, start_wall=time.time()):
                if self._stopping.is_set():
                    break
                if self.realtime:
                    if t0 is None:
                        t0 = time.monotonic()
                    due = t0 + frame.seq * period
                    delay = due - time.monotonic()
                    if delay > 0 and self._stopping.wait(delay):
                        break
                    # Stamped when handed over, as a camera stamps the exposure: a machine that cannot
                    # encode at the nominal rate yields fewer frames per second, never a video that is
                    # shorter than the time it recorded (export times every frame by its own pts).
                    now = time.monotonic()
                    frame = EncodedFrame(frame.data, round((now - t0) * 1e6), frame.keyframe, time.time(),
                                         frame.seq)
                    if not behind_logged and now - due > BEHIND_WARN_S:
                        behind_logged = True
                        logger.warning("synthetic camera cannot keep up with %g fps (about %.1f fps on this "
                                       "machine): frames carry their real capture times, so recordings keep "
                                       "their true length with fewer frames per second", self.info.fps,
                                       frame.seq / max(now - t0, 1e-6))
                if sound is not None:  # the sound process renders up to this frame's time, beeping with it
                    sound.advance(frame.pts_us, self._beeps(number))
                on_frame(frame)
                self.frames_emitted += 1
        except Exception as exc:  # a dying camera thread must become a visible fault, not a silent stop
            logger.exception("synthetic camera failed")
            self.fault = exc


def _preview_planes(planes, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Y, U and V planes cut down to about ``width`` columns, as picamera2's lores YUV420 stream gives them."""
    return _downscaled(planes, planes[0].shape[1], width)


def _downscaled(planes, luma_width: int, width: int) -> tuple[np.ndarray, ...]:
    """Every ``step``-th row and column of each plane, the step taking the picture's width to about ``width``."""
    step = max(1, luma_width // width)
    return tuple(np.ascontiguousarray(plane[::step, ::step]) for plane in planes)


# -- the replay clip, encoded in a child process ----------------------------------------------------------
# On a Pi the H.264 encoder is hardware outside the agent's process; for the replay clip the simulation
# keeps it outside too: a child process runs libx264 (about 70 MB of encoder state at 1080p) and pipes
# the packets back, so the agent's own memory is what it would be on the device. Nothing touches disk.

_RECORD = struct.Struct("<?III")  # keyframe, packet bytes, preview rows, preview columns


def _encode_clip_in_child(info: StreamInfo, frames: int, stopping: threading.Event) -> list | None:
    """``frames`` packets of the test pattern as (bytes, keyframe, preview or None), encoded by a child.

    None if ``stopping`` was set meanwhile; :class:`CameraUnavailableError` if the child fails.
    """
    command, env = python_module("camera.synthetic", str(info.width), str(info.height), repr(info.fps),
                                 str(info.bitrate), str(info.gop_frames), str(frames))
    errors = tempfile.TemporaryFile()  # the child's error text only; the video comes through the pipe
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, env=env)
    clip = []
    try:
        pipe = proc.stdout
        while len(clip) < frames and not stopping.is_set():
            head = pipe.read(_RECORD.size)
            if len(head) < _RECORD.size:
                break
            keyframe, size, rows, cols = _RECORD.unpack(head)
            data, pixels = pipe.read(size), pipe.read(rows * cols)
            if len(data) != size or len(pixels) != rows * cols:
                break  # the child died in the middle of a record
            clip.append((data, keyframe, np.frombuffer(pixels, np.uint8).reshape(rows, cols) if rows else None))
    finally:
        if len(clip) < frames:
            proc.kill()
        proc.communicate()
        errors.seek(0)
        err = errors.read()[-4000:]
        errors.close()
    if stopping.is_set():
        return None
    if proc.returncode != 0 or len(clip) != frames:
        detail = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise CameraUnavailableError(f"the synthetic camera's clip encoder failed after {len(clip)} of {frames} "
                                     f"frames: {detail[0]}")
    return clip


def _encode_clip_main(argv: list[str]) -> int:
    """Child side of :func:`_encode_clip_in_child`: encode and write records to stdout."""
    width, height, fps, bitrate, gop, frames = int(argv[0]), int(argv[1]), float(argv[2]), int(argv[3]), \
        int(argv[4]), int(argv[5])
    source = SyntheticSource(width, height, fps, bitrate, gop, realtime=False)
    previews: list[np.ndarray] = []
    out = sys.stdout.buffer
    for n, (data, keyframe, _) in enumerate(source._live(on_preview=previews.append)):
        if n >= frames:
            break
        preview = previews.pop()[0] if previews else None  # the luma; the parent adds the static chroma
        previews.clear()
        rows, cols = preview.shape if preview is not None else (0, 0)
        out.write(_RECORD.pack(keyframe, len(data), rows, cols))
        out.write(data)
        if preview is not None:
            out.write(preview.tobytes())
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_encode_clip_main(sys.argv[1:]))
