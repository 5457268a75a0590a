"""A fake of the parts of picamera2 that camera/picam.py uses, for tests off the Pi.

It follows the real signatures and behaviour (picamera2/picamera2.py, outputs/output.py,
encoders/encoder.py, encoders/h264_encoder.py, encoders/v4l2_encoder.py, request.py):

* ``Output.outputframe(frame, keyframe=True, timestamp=None, packet=None, audio=False)``;
* the encoder accepts only ``Output`` instances, calls ``outputframe`` from its own thread with the
  timestamp in microseconds since the first frame, and ``stop()`` joins that thread;
* ``Picamera2()`` wraps any open failure in ``RuntimeError("Camera __init__ sequence did not
  complete.")`` raised while handling the real reason;
* ``post_callback(request)`` runs on the camera thread for every frame; ``request.make_array`` of a
  YUV420 stream is a (height * 3/2, stride) uint8 array;
* sound as ``Encoder`` does it (encoders/encoder.py): with ``encoder.audio`` set, ``start()`` opens
  ``audio_input`` (a device not in ``state.microphones`` raises, as ``av.open`` does, and the
  recording does not start), announces the ``audio_output`` stream with ``Output._add_stream``, and
  an audio thread hands each AAC packet (pts in 1/rate, ``duration`` 1024) to
  ``outputframe(None, True, timestamp, packet, True)`` after shifting it by ``audio_sync``, dropping
  packets whose time is negative, in step with the pictures' clock. ``state.unplug()`` ends that
  thread as a vanished ALSA device ends PyAV's decode loop: no more packets, pictures go on.

Pass the module itself as ``PicameraSource(..., picamera2=fake_picamera2)``. Module state (attached
cameras, busy cameras, stride alignment, recorded instances) is reset by :func:`reset`.
"""

from __future__ import annotations

import threading
from fractions import Fraction

import numpy as np
from types import SimpleNamespace

#: Seconds between fake frames; small so the tests run fast.
FRAME_INTERVAL = 0.002
#: Pixel values the fake lores stream holds, so a test can tell the planes and the padding apart.
Y_VALUE, U_VALUE, V_VALUE, PAD_VALUE = 100, 90, 240, 7

SPS = b"\x00\x00\x00\x01\x67\x64\x00\x28"
PPS = b"\x00\x00\x00\x01\x68\xee\x3c\x80"


class _State:
    def __init__(self):
        self.cameras = [{"Model": "imx708", "Location": 2, "Rotation": 180, "Id": "/base/fake/imx708@1a"}]
        self.busy = False
        self.stride_align = 64
        self.microphones: list[str] = []
        self.microphone_gone = threading.Event()
        self.cameras_opened: list[Picamera2] = []
        self.encoders: list[H264Encoder] = []


state = _State()


def reset() -> None:
    """Back to one attached, free camera, no microphone and no recorded instances."""
    global state
    state = _State()


def unplug() -> None:
    """The USB microphone is pulled out: the audio thread's next read fails and the thread ends."""
    state.microphone_gone.set()


class _AudioStream:
    """What ``add_stream(codec_name="aac", rate=..., layout=..., bit_rate=...)`` gives, as far as used."""

    def __init__(self, codec_name="aac", rate=48_000, layout="stereo", bit_rate=None, **_):
        self.codec_context = SimpleNamespace(name=codec_name, sample_rate=rate, time_base=Fraction(1, rate),
                                             layout=layout, bit_rate=bit_rate, frame_size=1024)


class AudioPacket:
    """A PyAV packet as far as used: its bytes, pts/dts in ``time_base``, ``duration``."""

    def __init__(self, data: bytes, pts: int, time_base: Fraction, duration: int = 1024):
        self._data, self.pts, self.dts, self.time_base, self.duration = data, pts, pts, time_base, duration

    def __bytes__(self):
        return self._data


class Output:
    """As picamera2.outputs.Output."""

    def __init__(self, pts=None):
        self.recording = False
        self.ptsoutput = pts
        self.needs_pacing = False

    def start(self):
        self.recording = True

    def stop(self):
        self.recording = False

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        """Outputs frame from encoder."""

    def _add_stream(self, encoder_stream, *args, **kwargs):
        pass


class _Encoder:
    """As picamera2.encoders.Encoder plus the V4L2 encoder's poll thread, without ``force_key_frame``
    (which picamera2 only added in 2025)."""

    def __init__(self, bitrate=None, repeat=True, iperiod=None, framerate=None, enable_sps_framerate=False,
                 qp=None, profile=None):
        self.bitrate = bitrate
        self.repeat = repeat
        self.iperiod = iperiod
        self.framerate = framerate
        self.qp = qp
        self.profile = profile
        self.audio = False
        self.audio_input = {"file": "default", "format": "pulse"}
        self.audio_output = {"codec_name": "aac"}
        self.audio_sync = -100_000
        self._audio_thread = None
        self._video_us = -1
        #: Every (timestamp, packet) handed to the outputs as sound.
        self.audio_sent: list = []
        self.width = self.height = self.stride = 0
        self.format = None
        self.name = None
        self._output = []
        self._running = False
        self._lock = threading.Lock()
        self._output_lock = threading.Lock()
        self._force = threading.Event()
        self._thread = None
        #: Every (frame, keyframe, timestamp) handed to the outputs, to compare with what arrived.
        self.sent: list[tuple[bytes, bool, int]] = []
        state.encoders.append(self)

    @property
    def running(self):
        return self._running

    @property
    def output(self):
        return self._output[0] if len(self._output) == 1 else self._output

    @output.setter
    def output(self, value):
        value = value if isinstance(value, list) else [value]
        if not all(isinstance(out, Output) for out in value):
            raise RuntimeError("Must pass Output")
        self._output = value

    def _setup(self, quality):
        pass

    def start(self, quality=None):
        with self._lock:
            if self._running:
                raise RuntimeError("Encoder already running")
            if self.audio and self.audio_input.get("file") not in state.microphones:
                raise FileNotFoundError(2, f"No such file or directory: '{self.audio_input.get('file')}'")
            self._running = True
            for out in self._output:
                out.start()
                out._add_stream("video", "h264")
            self._thread = threading.Thread(target=self._poll, name="FakeEncoderThread", daemon=True)
            self._thread.start()
            if self.audio:
                stream = _AudioStream(**self.audio_output)
                for out in self._output:
                    out._add_stream(stream, **self.audio_output)
                self._audio_thread = threading.Thread(target=self._audio, args=(stream,), name="FakeAudioThread",
                                                      daemon=True)
                self._audio_thread.start()

    def stop(self):
        with self._lock:
            if not self._running:
                raise RuntimeError("Encoder already stopped")
            self._running = False
            self._thread.join(timeout=5)
            if self._audio_thread is not None:
                self._audio_thread.join(timeout=5)
            for out in self._output:
                out.stop()

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        with self._output_lock:  # picamera2 serialises the video and the audio thread here
            for out in self._output:
                out.outputframe(frame, keyframe, timestamp, packet, audio)

    def _poll(self):
        frame_us = round(1_000_000 / (self.framerate or 30))
        index = since_key = 0
        while self._running:
            keyframe = index == 0 or since_key >= (self.iperiod or 60) or self._force.is_set()
            if keyframe:
                self._force.clear()
                since_key = 0
                headers = SPS + PPS if self.repeat or index == 0 else b""
                frame = headers + b"\x00\x00\x00\x01\x65" + index.to_bytes(4, "big")
            else:
                frame = b"\x00\x00\x00\x01\x41" + index.to_bytes(4, "big")
            since_key += 1
            timestamp = index * frame_us
            self.sent.append((frame, keyframe, timestamp))
            self.outputframe(frame, keyframe, timestamp)
            self._video_us = timestamp
            index += 1
            threading.Event().wait(FRAME_INTERVAL)


    def _audio(self, stream) -> None:
        """As ``Encoder._audio_thread_func`` and ``_handle_audio_packet``, the microphone paced by the pictures."""
        tb = stream.codec_context.time_base
        delta = int(self.audio_sync / (1_000_000 * tb))
        pts = -1024  # the AAC encoder's priming frame comes first
        while self._running:
            if state.microphone_gone.is_set():
                return  # av.open's decode loop raised: picamera2's audio thread ends, nobody is told
            if (pts + 1024) / tb.denominator * 1_000_000 > self._video_us:  # not recorded yet
                threading.Event().wait(FRAME_INTERVAL / 4)
                continue
            packet = AudioPacket(b"\x21\x10" + pts.to_bytes(4, "big", signed=True), pts, tb)
            pts += 1024
            packet.pts -= delta
            packet.dts -= delta
            timestamp = int(packet.pts * 1_000_000 * tb)
            if packet.pts >= 0:
                self.audio_sent.append((timestamp, packet))
                self.outputframe(None, True, timestamp, packet, True)


class H264Encoder(_Encoder):
    """As picamera2.encoders.H264Encoder (2025 and later, with ``force_key_frame``)."""

    def __init__(self, bitrate=None, repeat=True, iperiod=None, framerate=None, enable_sps_framerate=False,
                 qp=None, profile=None):
        super().__init__(bitrate, repeat, iperiod, framerate, enable_sps_framerate, qp, profile)
        self.forced = 0

    def force_key_frame(self):
        self.forced += 1
        self._force.set()


class OldH264Encoder(_Encoder):
    """An H264Encoder from before ``force_key_frame`` existed."""


class CompletedRequest:
    def __init__(self, config):
        self.config = config

    def make_array(self, name):
        stream = self.config[name]
        if stream is None:
            raise RuntimeError(f"Stream {name!r} is not defined")
        (width, height), stride = stream["size"], stream["stride"]
        # As libcamera lays YUV420 out: Y rows of ``stride``, then U and V rows of ``stride / 2``, packed.
        image = np.full((height * 3 // 2, stride), PAD_VALUE, dtype=np.uint8)
        image[:height, :width] = Y_VALUE
        chroma = image.reshape(-1)[height * stride:].reshape(height, stride // 2)  # U rows, then V rows
        chroma[:height // 2, :width // 2] = U_VALUE
        chroma[height // 2:, :width // 2] = V_VALUE
        return image


class Picamera2:
    """As picamera2.Picamera2, for the calls a recording needs."""

    @staticmethod
    def global_camera_info():
        return [dict(camera) for camera in state.cameras]

    def __init__(self, camera_num=0, tuning=None):
        self.is_open = False
        self.started = False
        self.camera_config = None
        self.post_callback = None
        self.pre_callback = None
        self._encoders = set()
        self._loop = None
        self.calls: list[str] = []
        try:
            self._open_camera(camera_num)
        except Exception:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        state.cameras_opened.append(self)

    def _open_camera(self, camera_num):
        if not state.cameras:
            raise RuntimeError("Camera(s) not found (Do not forget to disable legacy camera with raspi-config).")
        if state.busy:
            raise RuntimeError("Failed to acquire camera: Device or resource busy")
        self.is_open = True

    def create_video_configuration(self, main={}, lores=None, raw={}, transform=None, colour_space=None,
                                   buffer_count=6, controls={}, display="main", encode="main", queue=True):
        if not self.is_open:
            raise RuntimeError("Camera not opened")
        main = _stream({"format": "XBGR8888", "size": (1280, 720)}, main)
        lores = _stream({"format": "YUV420", "size": main["size"]}, lores)
        controls = {"NoiseReductionMode": 1, "FrameDurationLimits": (33333, 33333)} | controls
        return {"use_case": "video", "transform": transform, "colour_space": colour_space,
                "buffer_count": buffer_count, "queue": queue, "main": main, "lores": lores, "raw": raw,
                "controls": controls, "display": display, "encode": encode}

    def configure(self, camera_config="preview"):
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        config = dict(camera_config)
        for name in ("main", "lores"):
            stream = config[name]
            if stream is None:
                continue
            width, height = stream["size"]
            if width % 2 or height % 2:
                raise RuntimeError("width and height should be even")
            align = state.stride_align
            config[name] = dict(stream, stride=-(-width // align) * align)
        if config["lores"] is not None:
            if any(lo > hi for lo, hi in zip(config["lores"]["size"], config["main"]["size"])):
                raise RuntimeError("lores stream dimensions may not exceed main stream")
            if config["lores"]["format"] not in ("YUV420", "YVU420"):
                raise RuntimeError("lores stream must be YUV")
        self.camera_config = config
        self.calls.append("configure")

    def camera_configuration(self):
        return self.camera_config

    def stream_configuration(self, name="main"):
        return self.camera_config[name]

    def start_encoder(self, encoder=None, output=None, pts=None, quality=None, name=None):
        if output is not None:
            encoder.output = output
        name = name or self.camera_config["encode"]
        encoder.name = name
        encoder.width, encoder.height = self.camera_config[name]["size"]
        encoder.format = self.camera_config[name]["format"]
        encoder.stride = self.camera_config[name]["stride"]
        encoder.start()
        self._encoders.add(encoder)

    def stop_encoder(self, encoders=None):
        for encoder in list(self._encoders):
            encoder.stop()
            self._encoders.discard(encoder)

    def start(self, config=None, show_preview=False):
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        if self.started:
            return
        self.started = True
        self._loop = threading.Thread(target=self._event_loop, name="FakeCameraEventLoop", daemon=True)
        self._loop.start()
        self.calls.append("start")

    def stop(self):
        if not self.started:
            return
        self.started = False
        self._loop.join(timeout=5)
        self.calls.append("stop")

    def start_recording(self, encoder, output, pts=None, config=None, quality=None, name=None):
        if self.camera_config is None and config is None:
            config = "video"
        if config is not None:
            self.configure(config)
        self.start_encoder(encoder, output, pts=pts, quality=quality, name=name)
        self.start()
        self.calls.append("start_recording")

    def stop_recording(self):
        self.stop()
        self.stop_encoder()
        self.calls.append("stop_recording")

    def close(self):
        if not self.is_open:
            return
        self.stop()
        self.is_open = False
        self.calls.append("close")

    def _event_loop(self):
        while self.started:
            callback = self.post_callback
            if callback is not None:
                callback(CompletedRequest(self.camera_config))
            threading.Event().wait(FRAME_INTERVAL)


def _stream(defaults: dict, updates):
    if updates is None:
        return None
    for key in updates:
        if key not in ("format", "size"):
            raise ValueError(f"Bad key {key!r}: valid stream configuration keys are ('format', 'size')")
    return defaults | dict(updates)
