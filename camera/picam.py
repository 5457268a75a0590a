"""The picamera2 backend: the Pi's H.264 encoder, handing each access unit to the agent as it comes.

picamera2 does the work: ``start_recording`` configures the camera, starts the encoder and the
camera. This module only chooses the settings and wraps what the encoder gives its ``Output``.
picamera2 is imported when a source is built, never at import time (it loads libcamera), and it can
be injected, so the tests drive this same code with a fake of picamera2's encoder/Output interface.

What picamera2 guarantees and we rely on (picamera2/encoders/encoder.py, v4l2_encoder.py,
libav_h264_encoder.py): ``Output.outputframe(frame, keyframe, timestamp, packet, audio)`` is called
once per encoded access unit, with ``timestamp`` in microseconds since the first frame of this
recording (the sensor timestamp, ns // 1000, minus the first one). It is called on the V4L2 encoder's
poll thread (Pi 4), on picamera2's camera thread for the libav encoder (Pi 5), and during ``stop()``
on the stopping thread when libav flushes its last frames; the callback therefore only enqueues.
"""

from __future__ import annotations

import functools
import logging
import time
from types import SimpleNamespace

import numpy as np

from base.errors import CameraError, CameraUnavailableError

from .frames import EncodedFrame, StreamInfo
from .source import FrameCallback, FrameSource

logger = logging.getLogger(__name__)

#: Width of the lores stream that feeds the front display; its height keeps the main aspect ratio.
PREVIEW_WIDTH = 128
#: The display needs no more; every preview copy runs on picamera2's camera thread.
PREVIEW_MAX_HZ = 10.0



def yuv420_planes(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copies of the Y, U and V planes of a picamera2 YUV420 array, without the stride padding.

    picamera2 hands YUV420 over as (height * 3/2, stride) bytes: the Y plane (``height`` rows of
    ``stride``), then U and V, each ``height/2`` rows of ``stride/2`` packed one after the other (so
    one array row holds two chroma rows). The display shows Y alone on grey panels, all three on colour.
    """
    stride = frame.shape[1]
    flat = frame.reshape(-1)
    y = frame[:height, :width].copy()
    rows, chroma_stride = height // 2, stride // 2
    start = height * stride
    u = flat[start:start + rows * chroma_stride].reshape(rows, chroma_stride)[:, :width // 2].copy()
    start += rows * chroma_stride
    v = flat[start:start + rows * chroma_stride].reshape(rows, chroma_stride)[:, :width // 2].copy()
    return y, u, v


NO_CAMERA = ("no camera detected: check that the camera ribbon cable is seated at both ends "
             "(contacts the right way round), then run 'rpicam-hello --list-cameras' to confirm the Pi sees it")
CAMERA_BUSY = ("the camera is in use by another program: stop it (another bodycam agent, rpicam-vid, "
               "motion; 'sudo fuser -v /dev/media* /dev/video*' names it) and start the agent again")


def load_picamera2() -> SimpleNamespace:
    """The three picamera2 names this backend uses. Only call this on a Pi: it loads libcamera."""
    try:
        from picamera2 import Picamera2
        from picamera2.encoders import H264Encoder  # the V4L2 encoder, or libav's where there is none (Pi 5)
        from picamera2.outputs import Output
    except ImportError as exc:
        raise CameraUnavailableError(
            f"the picamera2 module cannot be imported ({exc}); on Raspberry Pi OS run "
            "'apt install python3-picamera2', elsewhere use camera.backend = 'synthetic'") from exc
    return SimpleNamespace(Picamera2=Picamera2, H264Encoder=H264Encoder, Output=Output)


class PicameraSource(FrameSource):
    """H.264 from picamera2, with a small lores stream for the front display.

    ``picamera2`` is anything with ``Picamera2``, ``H264Encoder`` and ``Output`` attributes (a module
    or namespace); ``None`` imports the real one.
    """

    def __init__(self, width: int, height: int, fps: float, bitrate: int, gop_frames: int, *, picamera2=None):
        super().__init__(StreamInfo(codec="h264", width=width, height=height, fps=fps, bitrate=bitrate,
                                    gop_frames=gop_frames, source="picamera2"))
        self._api = picamera2 if picamera2 is not None else load_picamera2()
        self._picam2 = None
        self._encoder = None
        self._lores_size = (PREVIEW_WIDTH, max(2, round(PREVIEW_WIDTH * height / width / 2) * 2))
        self._preview_due = 0.0
        self._preview_failed = False
        self._warned_no_force = False

    @classmethod
    def from_config(cls, camera_config, picamera2=None) -> PicameraSource:
        c = camera_config
        return cls(c.width, c.height, c.fps, c.bitrate, c.keyframe_interval, picamera2=picamera2)

    @property
    def running(self) -> bool:
        encoder = self._encoder
        return encoder is not None and encoder.running and self.fault is None

    def start(self, on_frame: FrameCallback) -> None:
        if self._picam2 is not None:
            raise RuntimeError("PicameraSource is already started")
        self.fault = None
        info = self.info
        picam2 = self._open()
        frame_us = round(1_000_000 / info.fps)
        try:
            picam2.configure(picam2.create_video_configuration(
                main={"size": (info.width, info.height), "format": "YUV420"},
                lores={"size": self._lores_size, "format": "YUV420"},
                controls={"FrameDurationLimits": (frame_us, frame_us)}))
            # libcamera may adjust sizes; crop the preview to what it actually delivers.
            self._lores_size = tuple(picam2.stream_configuration("lores")["size"])
            # repeat: SPS/PPS before every IDR, so each GOP decodes on its own; iperiod: the GOP.
            encoder = self._api.H264Encoder(bitrate=info.bitrate, repeat=True, iperiod=info.gop_frames,
                                            framerate=info.fps)
            output = _output_class(self._api.Output)(self, on_frame)
            picam2.post_callback = self._on_request
            picam2.start_recording(encoder, output)
        except Exception as exc:
            _close_quietly(picam2)
            raise CameraError(
                f"the camera would not record {info.width}x{info.height} at {info.fps:g} fps ({exc}); "
                "check camera.width, camera.height and camera.fps against the modes "
                "'rpicam-hello --list-cameras' shows") from exc
        self._picam2, self._encoder = picam2, encoder
        logger.info("picamera2 recording %dx%d at %g fps, %d bit/s, keyframe every %d frames",
                    info.width, info.height, info.fps, info.bitrate, info.gop_frames)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the encoder and close the camera.

        ``timeout`` is not used: picamera2 joins its own encoder thread, which gives up within
        about 0.4 s once no more frames arrive.
        """
        picam2, self._picam2, self._encoder = self._picam2, None, None
        if picam2 is None:
            return
        try:
            picam2.post_callback = None
            picam2.stop_recording()
        except Exception as exc:
            raise CameraError(f"the camera did not stop cleanly ({exc}); restart the device "
                              "before recording again") from exc
        finally:
            _close_quietly(picam2)
        logger.info("picamera2 stopped")

    def request_keyframe(self) -> None:
        """Ask for an IDR now via ``force_key_frame()``.

        picamera2 added ``force_key_frame()`` to its H.264 encoders in 2025 (PR #1317). Older versions
        have no way to ask, so there the next IDR comes with the regular GOP, within ``gop_frames``.
        """
        encoder = self._encoder
        if encoder is None:
            return
        force = getattr(encoder, "force_key_frame", None)
        if force is not None:
            force()
        elif not self._warned_no_force:
            self._warned_no_force = True
            logger.warning("this picamera2 cannot force a keyframe (no H264Encoder.force_key_frame); "
                           "the next one comes within %d frames", self.info.gop_frames)

    def _open(self):
        Picamera2 = self._api.Picamera2
        try:
            if not Picamera2.global_camera_info():
                raise CameraError(NO_CAMERA)
            return Picamera2()
        except CameraError:
            raise
        except Exception as exc:
            # picamera2 replaces the cause with "Camera __init__ sequence did not complete."; the
            # real reason is in the exception it was raised from.
            detail = "; ".join(str(e) for e in (exc, exc.__cause__ or exc.__context__) if e is not None)
            text = detail.lower()
            if "not found" in text:
                raise CameraError(NO_CAMERA) from exc
            if "busy" in text or "acquire" in text or "-16" in text:
                raise CameraError(CAMERA_BUSY) from exc
            raise CameraError(f"the camera was detected but could not be opened ({detail}); check "
                              "'rpicam-hello' and reboot the device if it fails too") from exc

    def _on_request(self, request) -> None:
        """picamera2's ``post_callback``: copy the lores planes for the display, at most 10 times a second.

        It runs on picamera2's camera thread before each frame goes to the encoder, so it only copies
        ~14 KB, and it never raises: a broken preview must not stop the recording.
        """
        now = time.monotonic()
        if now < self._preview_due:
            return
        self._preview_due = now + 1.0 / PREVIEW_MAX_HZ
        try:
            width, height = self._lores_size
            self._set_preview(yuv420_planes(request.make_array("lores"), width, height))
        except Exception:
            if not self._preview_failed:
                self._preview_failed = True
                logger.warning("the front-display preview failed; recording continues", exc_info=True)

    def _fail(self, exc: BaseException) -> None:
        if self.fault is None:
            self.fault = exc
            logger.error("camera frames stopped: the frame callback raised %r", exc, exc_info=exc)


@functools.cache
def _output_class(base):
    """A subclass of picamera2's ``Output`` (encoders accept nothing else) that wraps each frame."""

    class FrameOutput(base):
        """Wraps each encoded access unit in an :class:`EncodedFrame`; no I/O, no waiting."""

        def __init__(self, source: PicameraSource, on_frame: FrameCallback):
            super().__init__()
            self._source = source
            self._on_frame = on_frame
            self._seq = 0

        def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
            if audio or self._source.fault is not None:
                return
            try:
                self._on_frame(EncodedFrame(data=bytes(frame), pts_us=int(timestamp), keyframe=bool(keyframe),
                                            wall_time=time.time(), seq=self._seq))
            except Exception as exc:
                # Raising here would kill picamera2's encoder thread silently; record it instead.
                self._source._fail(exc)
                return
            self._seq += 1

    return FrameOutput


def _close_quietly(picam2) -> None:
    try:
        picam2.close()
    except Exception:
        logger.warning("closing the camera failed", exc_info=True)
