"""The web app's and the commands' side of the custodian's socket: ask for one segment, read its plaintext.

    client = CustodianClient("/run/bodycam-custodian/custodian.sock")
    with client.open_segment(ticket, stem) as plaintext:   # raises CustodianRefused at once when refused
        for chunk in plaintext:                             # bytes, at most 64 KiB each
            ...

The stream raises :class:`CustodianError` if the custodian breaks it off (the ciphertext changed or was
damaged while it was read); only a stream read to its end without an error is the whole segment.
Nothing here touches disk.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Iterator

from base.errors import BodycamError

from . import wire

DEFAULT_TIMEOUT_S = 60.0


class CustodianError(BodycamError):
    """The custodian could not be reached, or broke a stream off."""


class CustodianUnavailable(CustodianError):
    """The custodian's socket does not answer (the service is stopped, or this user is not in its group)."""


class CustodianRefused(CustodianError):
    """The custodian refused the request; ``code`` says why (expired, not_granted, signature, ...)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


class CustodianClient:
    def __init__(self, socket_path: str | Path, *, timeout: float = DEFAULT_TIMEOUT_S):
        self.socket_path = Path(socket_path)
        self.timeout = timeout

    def probe(self) -> None:
        """Raise :class:`CustodianUnavailable` unless the socket takes a connection. It asks nothing, so the
        custodian logs nothing: a caller checks before it starts something it cannot finish (a download)."""
        self._connect().close()

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.socket_path))
        except OSError as exc:
            sock.close()
            raise CustodianUnavailable(
                f"the key custodian does not answer on {self.socket_path} ({exc.strerror or exc}); check that "
                "bodycam-custodian.service runs and that this user is in its group") from None
        return sock

    def open_segment(self, ticket: bytes | str, stem: str) -> SegmentStream:
        """Ask for ``stem``'s plaintext with ``ticket`` (as :func:`.ticket.issue_ticket` returned it)."""
        if isinstance(ticket, bytes):
            ticket = ticket.decode("ascii", errors="replace")
        sock = self._connect()
        try:
            wire.send_json(sock, wire.REQUEST, {"ticket": ticket, "stem": stem})
            kind, payload = wire.read_frame(sock)
            doc = wire.parse_json(payload)
            if kind == wire.END:
                raise CustodianRefused(f"the key custodian refused {stem}: {doc.get('error', 'no reason given')}",
                                       str(doc.get("code", "unknown")))
            if kind != wire.HEADER:
                raise CustodianError(f"the key custodian answered {stem} with an unexpected frame")
        except (OSError, wire.WireError) as exc:
            sock.close()
            raise CustodianError(f"the key custodian's answer for {stem} broke off ({exc})") from None
        except BaseException:
            sock.close()
            raise
        return SegmentStream(sock, doc)


class SegmentStream:
    """One segment's plaintext as it arrives: iterate for chunks, or :meth:`read` everything at once."""

    def __init__(self, sock: socket.socket, header: dict):
        self._sock = sock
        self.stem: str = header.get("stem", "")
        #: The manifest's format (``bodycam-segment/1``: H.264; ``/2``: MP4 with sound) and plaintext size.
        self.format: str = header.get("format", "")
        self.plaintext_bytes: int = int(header.get("plaintext_bytes", 0))
        self.received = 0
        self.complete = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            while True:
                try:
                    kind, payload = wire.read_frame(self._sock)
                except (OSError, wire.WireError) as exc:
                    raise CustodianError(f"the key custodian's stream of {self.stem} broke off after "
                                         f"{self.received} bytes ({exc})") from None
                if kind == wire.DATA:
                    self.received += len(payload)
                    yield payload
                    continue
                if kind != wire.END:
                    raise CustodianError(f"unexpected frame in the stream of {self.stem}")
                try:
                    doc = wire.parse_json(payload)
                except wire.WireError as exc:
                    raise CustodianError(f"the key custodian ended {self.stem} unreadably ({exc})") from None
                if not doc.get("ok"):
                    raise CustodianError(f"the key custodian broke off {self.stem}: {doc.get('error', '?')}")
                if doc.get("bytes") != self.received or self.received != self.plaintext_bytes:
                    raise CustodianError(f"{self.stem}: received {self.received} bytes, the custodian sent "
                                         f"{doc.get('bytes')} and the manifest says {self.plaintext_bytes}")
                self.complete = True
                return
        finally:
            self.close()

    def read(self) -> bytes:
        """The whole plaintext (one segment in memory: for the remux that needs it whole)."""
        return b"".join(self)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> SegmentStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
