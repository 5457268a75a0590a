"""Evidence tests: real H.264 built here with PyAV/libx264 (independent of the synthetic camera), real keys.

Each test gets fresh keys in ``tmp_path`` and seals into a spool-like directory with :func:`write_sealed`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from evidence.chain import ChainState
from evidence.keys import generate_device_key, generate_evidence_keys, load_device_public_keys, load_recipients, load_signing_key
from evidence.seal import Sealer, SealedSegment
from camera.frames import EncodedFrame, StreamInfo
from camera.segment import Segment

WIDTH, HEIGHT, FPS, GOP = 160, 120, 30, 10
T0 = 1_750_000_000.0  # wall clock of the first frame (2025-06-15)
FRAME_US = round(1_000_000 / FPS)

STREAM = StreamInfo(codec="h264", width=WIDTH, height=HEIGHT, fps=float(FPS), bitrate=200_000, gop_frames=GOP,
                    source="test-x264")

AGE = shutil.which("age") or "/usr/bin/age"


def encode_h264(count: int, *, first_seq: int = 0, pts_base_us: int = 0, wall_base: float = T0) -> list[EncodedFrame]:
    """``count`` frames of a moving test pattern, one IDR (with SPS/PPS) every ``GOP`` frames."""
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    enc.time_base = Fraction(1, FPS)
    enc.framerate = FPS
    enc.options = {"preset": "ultrafast", "tune": "zerolatency",
                   "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:repeat-headers=1"}
    packets = []
    for i in range(count):
        img = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        img[:, :, 0] = (i * 7) % 256
        img[(i * 3) % HEIGHT:(i * 3) % HEIGHT + 12, (i * 5) % WIDTH:(i * 5) % WIDTH + 12] = 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        packets += enc.encode(frame)
    packets += enc.encode(None)
    if len(packets) != count:
        raise RuntimeError(f"encoder gave {len(packets)} packets for {count} frames")
    return [EncodedFrame(data=bytes(p), pts_us=pts_base_us + i * FRAME_US, keyframe=p.is_keyframe,
                         wall_time=wall_base + i / FPS, seq=first_seq + i) for i, p in enumerate(packets)]


def cut(frames: list[EncodedFrame], incident_id: str, per_segment: int = GOP, *, final: bool = True,
        pre_event_frames: int = 0) -> list[Segment]:
    """Segments of ``per_segment`` frames (a multiple of GOP, so each starts at a keyframe)."""
    chunks = [frames[i:i + per_segment] for i in range(0, len(frames), per_segment)]
    return [Segment(incident_id=incident_id, index=k, frames=tuple(c), stream=STREAM,
                    final=final and k == len(chunks) - 1, pre_event_frames=pre_event_frames if k == 0 else 0)
            for k, c in enumerate(chunks)]


def record_with_sound(incident_id: str = "20260101T000000Z-abcdef", *, trigger: int = 100, stop: int = 220,
                      frames: int = 280) -> tuple:
    """(source, segments): an incident with sound from the synthetic camera (a beep at every frame numbered a
    multiple of 30) through the pre-event ring and the segmenter, so the cuts, the pre-event boundary and
    the pre-roll are the real ones: triggered at frame ``trigger`` with 2 s of pre-event, stopped at ``stop``."""
    from camera.frames import AudioPacket
    from camera.ring import PreEventRing
    from camera.segmenter import Segmenter
    from camera.synthetic import SyntheticSource

    source = SyntheticSource(WIDTH, HEIGHT, float(FPS), 300_000, FPS, realtime=False, audio_bitrate=48_000)
    ring, segments = PreEventRing(2.0, 64 << 20), []
    segmenter = Segmenter(source.info, 2.0, segments.append, audio=source.audio)
    for item in source.media(frames):
        if isinstance(item, AudioPacket):
            if not segmenter.add_audio(item) and not segmenter.active:
                ring.append_audio(item)
            continue
        if item.seq == trigger:
            pre_frames, audio = ring.drain()
            segmenter.begin(incident_id)
            for f in pre_frames:
                segmenter.add(f, pre_event=True)
            for p in audio:
                segmenter.add_audio(p)
        if item.seq == stop:
            segmenter.end()
        if segmenter.active:
            segmenter.add(item)
        else:
            segmenter.advance(item.pts_us)
            ring.append(item)
    if segmenter.waiting:
        raise RuntimeError(f"{segmenter.waiting} segment(s) still held back by the segmenter")
    return source, segments


def write_sealed(directory: Path, sealed: SealedSegment) -> None:
    """What the spool does, minus the durability: ``<stem>.age`` and ``<stem>.manifest.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / sealed.ciphertext_name).write_bytes(sealed.ciphertext)
    (directory / sealed.manifest_name).write_bytes(sealed.manifest)


@dataclass
class Env:
    """One municipality (evidence key, escrow key) and one enrolled device with its state dir."""

    root: Path
    keys: Path
    escrow: Path
    device: Path
    state: Path
    spool: Path
    device_id: str = "kod-07"
    site: str = "duisburg"

    @property
    def identity(self) -> Path:
        return self.keys / "evidence.key"

    @property
    def devices(self):
        return load_device_public_keys([self.device / "device.pub"])

    def sealer(self, *, escrow: bool = False) -> Sealer:
        pubs = [self.keys / "evidence.pub"] + ([self.escrow / "evidence.pub"] if escrow else [])
        return Sealer(device_id=self.device_id, site=self.site, recipients=load_recipients(pubs),
                      signing_key=load_signing_key(self.device / "device.key"),
                      chain=ChainState.load(self.state))

    def seal_all(self, segments: list[Segment], sealer: Sealer | None = None, *, commit: bool = True,
                 clock_sync: str = "ntp-synced", officer: str | None = None) -> list[SealedSegment]:
        sealer = sealer or self.sealer()
        out = []
        for seg in segments:
            sealed = sealer.seal(seg, clock_sync=clock_sync, officer=officer)
            write_sealed(self.spool, sealed)
            if commit:
                sealer.commit(sealed)
            out.append(sealed)
        return out


@pytest.fixture(scope="session")
def frames_60() -> list[EncodedFrame]:
    """Two seconds of video: six segments of ten frames."""
    return encode_h264(60)


@pytest.fixture
def env(tmp_path) -> Env:
    e = Env(root=tmp_path, keys=tmp_path / "municipality", escrow=tmp_path / "escrow", device=tmp_path / "device",
            state=tmp_path / "state", spool=tmp_path / "spool")
    for d in (e.keys, e.escrow, e.device, e.state, e.spool):
        d.mkdir()
    generate_evidence_keys(e.keys)
    generate_evidence_keys(e.escrow)
    generate_device_key(e.device, device_id=e.device_id)
    return e
