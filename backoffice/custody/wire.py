"""What the custodian and its clients say over the Unix socket: typed, length-prefixed frames.

One request per connection. The client sends ``REQUEST`` (JSON: ``ticket``, ``stem``). The custodian
answers either ``END`` with ``{"ok": false, "code": ..., "error": ...}`` (refused; nothing was
decrypted), or ``HEADER`` (JSON: the segment's stem, format and ``plaintext_bytes``), then ``DATA``
frames of plaintext, then ``END`` with ``{"ok": true, "bytes": n}`` -- or ``{"ok": false, ...}`` when
the stream broke off (the ciphertext changed or was damaged while it was read). A client must treat
the plaintext as good only after a good ``END``.

A frame is one type byte, a 4-byte big-endian length, and the payload.
"""

from __future__ import annotations

import json
import socket
import struct

from base.errors import BodycamError

REQUEST, HEADER, DATA, END = b"Q", b"H", b"D", b"E"
TYPES = (REQUEST, HEADER, DATA, END)
#: Largest JSON frame (request, header, end) either side accepts.
MAX_JSON = 128 * 1024
#: Largest data frame: the custodian sends at most this much plaintext per frame.
MAX_DATA = 256 * 1024
_HEAD = struct.Struct(">cI")


class WireError(BodycamError):
    """The other side sent something that is not a frame of this protocol, or hung up mid-frame."""


class Closed(WireError):
    """The other side hung up before the next frame began."""


def send_frame(sock: socket.socket, kind: bytes, payload: bytes | memoryview = b"") -> None:
    sock.sendall(_HEAD.pack(kind, len(payload)))
    if payload:
        sock.sendall(payload)


def send_json(sock: socket.socket, kind: bytes, doc: dict) -> None:
    send_frame(sock, kind, json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode("ascii"))


def read_frame(sock: socket.socket) -> tuple[bytes, bytes]:
    """(type, payload) of the next frame; :class:`WireError` for anything else, EOF included."""
    kind, length = _HEAD.unpack(_read_exactly(sock, _HEAD.size, at_frame_start=True))
    if kind not in TYPES:
        raise WireError(f"unknown frame type {kind!r}")
    if length > (MAX_DATA if kind == DATA else MAX_JSON):
        raise WireError(f"a {kind.decode()} frame of {length} bytes is larger than allowed")
    return kind, _read_exactly(sock, length)


def parse_json(payload: bytes) -> dict:
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WireError("a frame that should hold JSON does not") from None
    if not isinstance(doc, dict):
        raise WireError("a JSON frame does not hold an object")
    return doc


def _read_exactly(sock: socket.socket, n: int, at_frame_start: bool = False) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        r = sock.recv_into(view[got:], n - got)
        if r == 0:
            if got == 0 and at_frame_start:
                raise Closed("the other side closed the connection")
            raise WireError("the other side closed the connection mid-frame")
        got += r
    return bytes(buf)
