"""The synthetic camera's sound, rendered and encoded by a child process: AAC packets come back in batches.

The replay clip's pictures are encoded outside the agent's process, as the Pi's hardware encoder
works outside it; the test tone is too. The agent's side only tells the child the times of the
pictures it hands over, a few times a second, and reads the finished packets on one thread; it
neither renders nor encodes, and does not load PyAV for sound.

**Lock-step without a shared clock.** The child renders only up to the newest picture time it was
told (a cursor), and a picture that starts a beep is told no later than the first cursor past it.
So the packets are exactly those :class:`~camera.synthaudio.SyntheticAudio` makes in the agent's
own process, beeps on the pictures' own (real) times, whatever the batching or the scheduling of
either process. They arrive up to one batch (``BATCH_US`` of pictures) plus the encoder's delay
after their pictures; the segmenter waits for late sound (camera/segmenter.py, ``AUDIO_WAIT_US``).

Wire format, over the child's stdin and stdout (nothing touches disk):

* agent → child, one record per cursor: ``pts_us`` (int64), ``beep`` (uint8: a beep starts at ``pts_us``);
* child → agent, per packet: ``pts_us`` (int64), ``duration_us``, ``seq``, ``size`` (uint32 each), then
  ``size`` bytes of raw AAC.

The child ends when its stdin closes, after sending the packets up to the last cursor; it ignores
SIGINT and SIGTERM (a terminal's Ctrl-C or systemd's stop reach the whole process group), so the
agent decides when the sound ends and its last segment keeps the sound up to its last picture.
"""

from __future__ import annotations

import logging
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from typing import Callable

from .childproc import python_module
from .frames import AudioPacket

logger = logging.getLogger(__name__)

CURSOR = struct.Struct("<qB")
PACKET = struct.Struct("<qIII")
#: Pictures per batch, as media time: the agent writes to the child about five times a second.
BATCH_US = 200_000
#: How long :meth:`SoundProcess.close` waits for the child's last packets. A healthy child needs
#: milliseconds, but on a loaded machine it may still be starting (Python, NumPy, FFmpeg's libraries)
#: when a short recording ends; its sound is evidence, so it gets this long before it is ended.
FINISH_TIMEOUT_S = 15.0


class SoundProcess:
    """The agent's side of the child: start it, send it picture times in batches, read its packets.

    :meth:`advance` and :meth:`close` are called by the camera's owner (the camera thread while it
    runs, then the thread that stops it); ``on_packet`` runs on the reader thread and must only
    enqueue; ``on_end(reason)`` runs there once if the child ends (or stalls) before :meth:`close`.
    The agent never waits for the child while recording: cursors go out on a non-blocking pipe.
    """

    def __init__(self, bitrate: int, on_packet: Callable[[AudioPacket], None], on_end: Callable[[str], None],
                 batch_us: int = BATCH_US):
        self.bitrate = bitrate
        self._on_packet = on_packet
        self._on_end = on_end
        self._batch_us = batch_us
        self._proc: subprocess.Popen | None = None
        self._errors = None
        self._reader: threading.Thread | None = None
        self._pending: list[bytes] = []
        self._sent_us = 0
        self._last_us: int | None = None
        self._broken = False  # the child died or stalled: nothing more is sent
        self._closing = False

    def start(self) -> None:
        command, env = python_module("camera.soundprocess", str(self.bitrate))
        self._errors = tempfile.TemporaryFile()  # the child's error text only
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors,
                                      env=env, bufsize=0)
        os.set_blocking(self._proc.stdin.fileno(), False)
        self._reader = threading.Thread(target=self._read, name="SoundProcessReader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def advance(self, pts_us: int, beep: bool) -> None:
        """A picture at ``pts_us`` is handed over (``beep``: the tone's beep starts with it)."""
        self._last_us = pts_us
        if beep:
            self._pending.append(CURSOR.pack(pts_us, 1))
        if pts_us - self._sent_us >= self._batch_us:
            if not beep:
                self._pending.append(CURSOR.pack(pts_us, 0))
            self._send()

    def close(self, timeout: float = FINISH_TIMEOUT_S) -> None:
        """Let the child finish the sound up to the last picture, deliver its packets, and end it."""
        proc = self._proc
        if proc is None:
            return
        self._closing = True
        if self._last_us is not None and self._last_us > self._sent_us:
            self._pending.append(CURSOR.pack(self._last_us, 0))
        self._send()
        try:
            proc.stdin.close()
        except OSError:
            pass  # the child is gone; the reader has told
        self._reader.join(timeout)
        if self._reader.is_alive():
            logger.error("the synthetic sound process did not finish within %.1f s; ended", timeout)
            proc.kill()
            self._reader.join(timeout)
        proc.wait()
        self._errors.close()
        self._proc = None

    def _send(self) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        self._sent_us = self._last_us if self._last_us is not None else self._sent_us
        if self._broken or not data:
            return
        try:
            os.write(self._proc.stdin.fileno(), data)  # a few records, under PIPE_BUF: all or nothing
        except BlockingIOError:
            # 64 KiB of cursors unread: the child has not rendered for minutes. Its sound is lost either
            # way; ending it makes the reader report the fault instead of the agent waiting on it.
            self._broken = True
            logger.error("the synthetic sound process stopped reading; ending it")
            self._proc.kill()
        except (BrokenPipeError, ValueError):
            self._broken = True  # the child ended; the reader reports why

    def _read(self) -> None:
        try:
            self._read_packets()
        except Exception as exc:  # a dead reader would be silent sound loss: make it a fault
            logger.exception("reading the synthetic sound process failed")
            self._broken = True
            self._proc.kill()
            self._on_end(f"reading its packets failed: {exc!r}")

    def _read_packets(self) -> None:
        fd = self._proc.stdout.fileno()
        buffer = bytearray()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buffer += chunk
            offset = 0
            while len(buffer) - offset >= PACKET.size:
                pts_us, duration_us, seq, size = PACKET.unpack_from(buffer, offset)
                end = offset + PACKET.size + size
                if end > len(buffer):
                    break
                self._on_packet(AudioPacket(bytes(buffer[offset + PACKET.size:end]), pts_us, duration_us, seq))
                offset = end
            del buffer[:offset]
        self._proc.stdout.close()
        code = self._proc.wait()
        if self._closing and code == 0:
            return
        self._broken = True
        self._errors.seek(0)
        lines = self._errors.read()[-4000:].decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else (f"exit status {code}" if code else "it stopped early")
        self._on_end(reason)


def _child_main(argv: list[str]) -> int:
    """The child: render and encode the test tone up to each cursor, write the packets of each read at once."""
    from .synthaudio import SyntheticAudio

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    audio = SyntheticAudio(int(argv[0]))
    out = sys.stdout.buffer
    pending = b""
    while True:
        data = os.read(0, 65536)
        if not data:
            break
        pending += data
        whole = len(pending) - len(pending) % CURSOR.size
        batch = bytearray()
        for offset in range(0, whole, CURSOR.size):
            pts_us, beep = CURSOR.unpack_from(pending, offset)
            for packet in audio.advance(pts_us, bool(beep)):
                batch += PACKET.pack(packet.pts_us, packet.duration_us, packet.seq, packet.size)
                batch += packet.data
        pending = pending[whole:]
        if batch:
            out.write(batch)
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
