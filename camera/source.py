"""The one interface every camera backend implements, and the factory that picks one by name.

A source owns its capture thread. It hands each :class:`EncodedFrame` to the callback given to
:meth:`FrameSource.start`, on that thread, and expects the callback to return at once (the recorder's
callback only enqueues). A source with sound (:attr:`FrameSource.audio` set) hands its
:class:`AudioPacket` objects to a second callback, on the same media clock. The backends are chosen by name, as gpiozero chooses pin factories, so the
rest of the agent never imports picamera2 and runs anywhere.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from abc import ABC, abstractmethod
from typing import Callable

from base.errors import CameraUnavailableError, ConfigError

from .frames import AudioInfo, AudioPacket, EncodedFrame, StreamInfo

logger = logging.getLogger(__name__)

FrameCallback = Callable[[EncodedFrame], None]
AudioCallback = Callable[[AudioPacket], None]

BACKENDS = ("auto", "picamera2", "synthetic")


class FrameSource(ABC):
    """A camera that produces encoded H.264 frames on its own thread."""

    def __init__(self, info: StreamInfo):
        self.info = info
        self._preview = None
        self._preview_lock = threading.Lock()
        #: The exception that stopped the source, if any; the runtime shows it as a camera fault.
        self.fault: BaseException | None = None
        #: The sound track this source records with its pictures, or None for pictures only.
        self.audio: AudioInfo | None = None
        #: Why the source records no sound although it should (no microphone), or None; the pictures go on.
        self.audio_fault: str | None = None

    @abstractmethod
    def start(self, on_frame: FrameCallback, on_audio: AudioCallback | None = None) -> None:
        """Start capturing; ``on_frame`` is called on the capture thread for every frame.

        ``on_audio`` receives the audio packets of a source with :attr:`audio`; without it, none are made.
        """

    @abstractmethod
    def stop(self, timeout: float = 5.0) -> None:
        """Stop capturing and join the capture thread. Safe to call twice."""

    @abstractmethod
    def request_keyframe(self) -> None:
        """Ask the encoder for an IDR frame (with SPS/PPS) as soon as possible."""

    @property
    @abstractmethod
    def running(self) -> bool:
        """True while frames are being produced."""

    def preview(self):
        """The latest small picture for the front display: the Y, U and V planes of a YUV420 image (numpy
        uint8; U and V at half size, as picamera2's lores stream), or None before the first frame."""
        with self._preview_lock:
            return self._preview

    def _set_preview(self, image) -> None:
        with self._preview_lock:
            self._preview = image

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def picamera2_available() -> bool:
    """True when the picamera2 module can be imported (Raspberry Pi OS ships it)."""
    return importlib.util.find_spec("picamera2") is not None


def open_source(camera_config, audio_config=None) -> FrameSource:
    """Build the frame source named by ``camera_config.backend``, with sound when ``audio_config.enabled``.

    ``auto`` means picamera2 where it is installed and the synthetic source elsewhere. A Pi whose
    camera is missing therefore fails loudly instead of silently recording a test pattern.
    """
    backend = camera_config.backend
    if backend == "auto":
        backend = "picamera2" if picamera2_available() else "synthetic"
        logger.info("camera backend auto-selected: %s", backend)
    if backend == "synthetic":
        from .synthetic import SyntheticSource

        return SyntheticSource.from_config(camera_config, audio_config)
    if backend == "picamera2":
        if not picamera2_available():
            raise CameraUnavailableError(
                "camera.backend is 'picamera2' but the picamera2 module is not installed; "
                "on Raspberry Pi OS run 'apt install python3-picamera2', elsewhere use backend = 'synthetic'"
            )
        from .picam import PicameraSource

        return PicameraSource.from_config(camera_config, audio_config=audio_config)
    raise ConfigError(f"camera.backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
