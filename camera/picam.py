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

Sound comes the same way (picamera2/encoders/encoder.py, 2024 and later): with ``encoder.audio``
set, ``Encoder.start`` opens ``audio_input`` with PyAV (we give ALSA and the configured device),
adds an ``audio_output`` stream (AAC, mono, 48 kHz, the configured bitrate) and announces it to the
outputs with ``Output._add_stream``; its own thread encodes and calls ``outputframe(None, True,
timestamp, packet, audio=True)`` with ``timestamp`` in microseconds on the pictures' clock (the
audio starts with the first picture; ``audio_sync``, by default -100 ms, compensates the
microphone's latency). Packets with a negative time (the encoder's priming) are never delivered.
A microphone that cannot be opened makes ``start_recording`` fail: the recording is then started
again without sound, and :attr:`FrameSource.audio_fault` says why, so the picture never waits for a
microphone. A microphone that disappears later ends picamera2's audio thread quietly; the recorder
notices the silence (packets stop while pictures go on) and raises the fault.
"""

from __future__ import annotations

import functools
import logging
import time
from types import SimpleNamespace

import numpy as np

from base.errors import CameraError, CameraUnavailableError

from .frames import AudioInfo, AudioPacket, EncodedFrame, StreamInfo
from .source import AudioCallback, FrameCallback, FrameSource

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
AUDIO_SAMPLE_RATE = 48_000
NO_MICROPHONE = ("the microphone {device!r} cannot be opened ({detail}); recording pictures without sound. "
                 "'arecord -l' lists the capture devices; set audio.device to one of them (e.g. 'hw:1,0')")
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

    def __init__(self, width: int, height: int, fps: float, bitrate: int, gop_frames: int, *, picamera2=None,
                 audio_device: str | None = None, audio_bitrate: int = 48_000):
        super().__init__(StreamInfo(codec="h264", width=width, height=height, fps=fps, bitrate=bitrate,
                                    gop_frames=gop_frames, source="picamera2"))
        #: The ALSA capture device to record sound from, or None for pictures only.
        self.audio_device = audio_device
        if audio_device is not None:
            self.audio = AudioInfo.aac_lc(AUDIO_SAMPLE_RATE, 1, audio_bitrate, "picamera2")
        self._api = picamera2 if picamera2 is not None else load_picamera2()
        self._picam2 = None
        self._encoder = None
        self._lores_size = (PREVIEW_WIDTH, max(2, round(PREVIEW_WIDTH * height / width / 2) * 2))
        self._preview_due = 0.0
        self._preview_failed = False
        self._warned_no_force = False

    @classmethod
    def from_config(cls, camera_config, picamera2=None, audio_config=None) -> PicameraSource:
        c, a = camera_config, audio_config
        sound = a is not None and a.enabled
        return cls(c.width, c.height, c.fps, c.bitrate, c.keyframe_interval, picamera2=picamera2,
                   audio_device=a.device if sound else None, audio_bitrate=a.bitrate if sound else 48_000)

    @property
    def running(self) -> bool:
        encoder = self._encoder
        return encoder is not None and encoder.running and self.fault is None

    def start(self, on_frame: FrameCallback, on_audio: AudioCallback | None = None) -> None:
        if self._picam2 is not None:
            raise RuntimeError("PicameraSource is already started")
        self.fault = None
        self.audio_fault = None
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
            picam2.post_callback = self._on_request
            sound = self.audio is not None and on_audio is not None
            try:
                encoder = self._start_recording(picam2, on_frame, on_audio, sound)
            except Exception as exc:
                if not sound:
                    raise
                self.audio_fault = NO_MICROPHONE.format(device=self.audio_device, detail=exc)
                logger.error("%s", self.audio_fault)
                encoder = self._start_recording(picam2, on_frame, None, False)
        except Exception as exc:
            _close_quietly(picam2)
            raise CameraError(
                f"the camera would not record {info.width}x{info.height} at {info.fps:g} fps ({exc}); "
                "check camera.width, camera.height and camera.fps against the modes "
                "'rpicam-hello --list-cameras' shows") from exc
        self._picam2, self._encoder = picam2, encoder
        logger.info("picamera2 recording %dx%d at %g fps, %d bit/s, keyframe every %d frames",
                    info.width, info.height, info.fps, info.bitrate, info.gop_frames)

    def _start_recording(self, picam2, on_frame: FrameCallback, on_audio: AudioCallback | None, sound: bool):
        info = self.info
        # repeat: SPS/PPS before every IDR, so each GOP decodes on its own; iperiod: the GOP.
        encoder = self._api.H264Encoder(bitrate=info.bitrate, repeat=True, iperiod=info.gop_frames,
                                        framerate=info.fps)
        if sound:
            encoder.audio = True
            encoder.audio_input = {"file": self.audio_device, "format": "alsa"}
            encoder.audio_output = {"codec_name": "aac", "rate": self.audio.sample_rate, "layout": "mono",
                                    "bit_rate": self.audio.bitrate}
        output = _output_class(self._api.Output)(self, on_frame, on_audio if sound else None)
        picam2.start_recording(encoder, output)
        return encoder

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
        """Wraps each encoded access unit in an :class:`EncodedFrame`, each sound packet in an
        :class:`AudioPacket`; no I/O, no waiting. picamera2 serialises the calls (its output lock)."""

        def __init__(self, source: PicameraSource, on_frame: FrameCallback, on_audio: AudioCallback | None):
            super().__init__()
            self._source = source
            self._on_frame = on_frame
            self._on_audio = on_audio
            self._seq = 0
            self._audio_seq = 0

        def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
            if self._source.fault is not None:
                return
            if audio:
                if self._on_audio is not None:
                    self._sound(packet, timestamp)
                return
            try:
                self._on_frame(EncodedFrame(data=bytes(frame), pts_us=int(timestamp), keyframe=bool(keyframe),
                                            wall_time=time.time(), seq=self._seq))
            except Exception as exc:
                # Raising here would kill picamera2's encoder thread silently; record it instead.
                self._source._fail(exc)
                return
            self._seq += 1

        def _sound(self, packet, timestamp) -> None:
            try:
                duration_us = round(packet.duration * packet.time_base * 1_000_000)
                self._on_audio(AudioPacket(bytes(packet), int(timestamp), duration_us, self._audio_seq))
            except Exception as exc:
                self._source._fail(exc)
                return
            self._audio_seq += 1

    return FrameOutput


def _close_quietly(picam2) -> None:
    try:
        picam2.close()
    except Exception:
        logger.warning("closing the camera failed", exc_info=True)
