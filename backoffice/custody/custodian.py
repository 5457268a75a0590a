"""The key custodian: the one process that holds the municipality's evidence key and decrypts for a ticket.

For each request it checks, in this order, and refuses at the first failure (code in brackets):
the request's form [bad_request]; the ticket's signature with the office key [signature], its form
[malformed], its lifetime [expired, not_yet_valid, lifetime]; that the ticket grants the stem
[not_granted]; that the segment is in the store [unknown_segment], belongs to the ticket's incident
[not_granted], holds video [no_video] and is sealed to this custodian's key [wrong_key]; and that its
manifest and ciphertext verify exactly as ``bodycam verify`` checks them (:func:`evidence.verify.verify_paths`:
device signature with an enrolled key, file names, ciphertext SHA-256) [verification_failed]. Every
refusal is a ``decryption_refused`` line in the office audit log and a clear answer on the socket;
nothing else changes.

Before the first byte of plaintext leaves, the decryption is recorded (``segment_decrypted``: access,
stem, purpose, person, bytes); if that line cannot be written, nothing is decrypted [audit]. The
ciphertext is then read once more, hashed again as it is read (the file may have changed since the
check) and decrypted 8 KiB at a time by pyrage (the age reference implementation's Rust crate); the
plaintext goes straight into the socket, in frames of at most 64 KiB. It never touches disk and the
whole segment is never in memory. A stream that breaks off (damaged or changed ciphertext, the client
gone) ends with an error frame and a ``decryption_interrupted`` line.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import socket
import stat
import struct
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping

import pyrage

from base.errors import BodycamError
from base.ids import is_stem
from evidence.keys import DevicePublicKey, recipient_key_id
from evidence.seal import CIPHERTEXT_SUFFIX, MANIFEST_SUFFIX, Manifest
from evidence.verify import VerifyInputError, verify_paths

from ..catalog import office as events
from ..store import incident_dir_name
from . import wire
from .ticket import Ticket, TicketError, verify_ticket

logger = logging.getLogger(__name__)

#: Plaintext per data frame.
SEND_CHUNK = 64 * 1024
#: How long a client may take to send its request, and the longest a send may block.
REQUEST_TIMEOUT_S = 10.0
SEND_TIMEOUT_S = 60.0
DEFAULT_MAX_CLIENTS = 16


class CustodianError(BodycamError):
    """The custodian cannot start (socket in use, key files, store)."""


class Refused(Exception):
    """A request the custodian turns down; ``code`` is machine-readable, the message says why in words."""

    def __init__(self, code: str, message: str, ticket: Ticket | None = None):
        super().__init__(message)
        self.code = code
        self.ticket = ticket


@dataclass(frozen=True)
class _Admitted:
    ticket: Ticket
    manifest: Manifest
    age_path: Path


class Custodian:
    """Decides and serves one request at a time per calling thread; holds no state between requests.

    ``office`` is a :class:`backoffice.catalog.office.Office` (store, shared audit log, office key, clock):
    its key verifies the tickets and signs the audit lines. ``identities``: the evidence key's age
    identities. ``devices``: the enrolled device keys by key id.
    """

    def __init__(self, office, identities: list, devices: Mapping[str, DevicePublicKey]):
        if not devices:
            raise CustodianError("no enrolled device keys: the custodian verifies every segment before it decrypts")
        self.office = office
        self._identities = list(identities)
        self._recipient_ids = {recipient_key_id(i.to_public()) for i in self._identities}
        self._devices = dict(devices)
        self._public = office.signer.public

    @property
    def now(self) -> datetime:
        return self.office.now()

    # -- one connection ------------------------------------------------------------------------------
    def serve(self, conn: socket.socket, peer: str = "") -> None:
        """Answer the one request on ``conn`` (frames in :mod:`.wire`)."""
        ticket_sha256, stem = None, None
        try:
            conn.settimeout(REQUEST_TIMEOUT_S)
            kind, payload = wire.read_frame(conn)
            if kind != wire.REQUEST:
                raise Refused("bad_request", "the first frame must be a request")
            request = wire.parse_json(payload)
            ticket_data, stem = request.get("ticket"), request.get("stem")
            if not isinstance(ticket_data, str) or not isinstance(stem, str) or set(request) != {"ticket", "stem"}:
                stem = stem if isinstance(stem, str) else None
                raise Refused("bad_request", "a request names exactly a ticket and a stem (both text)")
            ticket_sha256 = hashlib.sha256(ticket_data.encode("utf-8", errors="replace")).hexdigest()
            admitted = self._admit(ticket_data, stem)
        except Refused as refusal:
            self._refuse(conn, refusal, stem, ticket_sha256, peer)
            return
        except wire.Closed:
            logger.debug("a client (%s) connected and left without asking anything", peer)
            return
        except (wire.WireError, OSError) as exc:
            self._refuse(conn, Refused("bad_request", f"unreadable request ({exc})"), stem, ticket_sha256, peer)
            return
        self._stream(conn, admitted, peer)

    def _admit(self, ticket_data: str, stem: str) -> _Admitted:
        try:
            ticket = verify_ticket(ticket_data, self._public, self.now)
        except TicketError as exc:
            raise Refused(exc.code, str(exc)) from None
        if not is_stem(stem) or not ticket.grants(stem):
            raise Refused("not_granted", f"the ticket of access {ticket.access} does not grant segment {stem[:100]!r}",
                          ticket)
        folder = Path(self.office.store_dir) / ticket.site / ticket.device_id / incident_dir_name(ticket.incident_id)
        age_path, manifest_path = folder / f"{stem}{CIPHERTEXT_SUFFIX}", folder / f"{stem}{MANIFEST_SUFFIX}"
        if not (manifest_path.is_file() and age_path.is_file()):
            raise Refused("unknown_segment", f"segment {stem} of incident {ticket.incident} is not in the store "
                          "(deleted, or never stored)", ticket)
        try:
            report = verify_paths([manifest_path, age_path], self._devices)
        except VerifyInputError:
            raise Refused("unknown_segment", f"segment {stem} of incident {ticket.incident} was removed meanwhile",
                          ticket) from None
        result = next((s for s in report.segments if s.stem == stem), None)
        if result is None or not result.ok:
            problems = "; ".join(result.problems) if result else "its files were not found"
            raise Refused("verification_failed", f"segment {stem} does not verify: {problems}", ticket)
        m = result.manifest
        if (m.site, m.device_id, m.incident_id) != (ticket.site, ticket.device_id, ticket.incident_id):
            raise Refused("not_granted", f"segment {stem} belongs to incident {m.device_id}/{m.incident_id!r}, not "
                          f"to the ticket's {ticket.incident}", ticket)
        if m.is_end_marker:
            raise Refused("no_video", f"segment {stem} is an incident end marker; it holds no video", ticket)
        if not self._recipient_ids & set(m.recipient_key_ids):
            raise Refused("wrong_key", f"segment {stem} is not sealed to this custodian's evidence key "
                          f"({', '.join(sorted(self._recipient_ids))})", ticket)
        return _Admitted(ticket, m, age_path)

    # -- answers -------------------------------------------------------------------------------------
    def _refuse(self, conn, refusal: Refused, stem, ticket_sha256, peer: str) -> None:
        t = refusal.ticket
        fields = {"code": refusal.code, "reason": str(refusal)[:500], "stem": (stem or "")[:100],
                  "ticket_sha256": ticket_sha256, "peer": peer}
        if t is not None:
            fields.update(access=t.access, incident=t.incident, by=t.user, purpose=t.purpose)
        logger.warning("refused %s for %r (%s): %s", refusal.code, (stem or "")[:100], peer, refusal)
        try:
            self.office.record(events.DECRYPTION_REFUSED, **fields)
        except BodycamError as exc:
            logger.error("cannot record the refusal in the office audit log: %s", exc)
        try:
            wire.send_json(conn, wire.END, {"ok": False, "code": refusal.code, "error": str(refusal)})
        except OSError:
            pass  # the client is gone; the refusal is recorded

    def _stream(self, conn, admitted: _Admitted, peer: str) -> None:
        t, m = admitted.ticket, admitted.manifest
        try:
            self.office.record(events.SEGMENT_DECRYPTED, access=t.access, incident=t.incident, stem=m.stem,
                               kind=t.kind, purpose=t.purpose, by=t.user, bytes=m.plaintext_bytes,
                               ciphertext_sha256=m.ciphertext_sha256, peer=peer)
        except BodycamError as exc:
            logger.error("not decrypting %s: the office audit log refused the line (%s)", m.stem, exc)
            _send_quietly(conn, {"ok": False, "code": "audit", "error": "the custodian cannot write the office "
                                 "audit log, so it decrypts nothing; tell IT"})
            return
        logger.info("decrypting %s for access %d (%s, %r, by %r)", m.stem, t.access, t.kind, t.purpose, t.user)
        sink = _FrameSink(conn)
        reason = self._decrypt_into(conn, admitted, sink)
        if reason is None:
            if _send_quietly(conn, {"ok": True, "bytes": sink.sent}):
                return
            reason = "the client closed the connection before the end"
        logger.error("decryption of %s for access %d broke off after %d bytes: %s", m.stem, t.access, sink.sent,
                     reason)
        try:
            self.office.record(events.DECRYPTION_INTERRUPTED, access=t.access, incident=t.incident, stem=m.stem,
                               by=t.user, sent=sink.sent, reason=reason)
        except BodycamError as exc:
            logger.error("cannot record the interruption in the office audit log: %s", exc)
        if not sink.failed:
            _send_quietly(conn, {"ok": False, "code": "broken_off", "error": reason})

    def _decrypt_into(self, conn, admitted: _Admitted, sink: _FrameSink) -> str | None:
        """Send the header and the plaintext; None when all of it went out intact, else why it broke off."""
        m = admitted.manifest
        try:
            conn.settimeout(SEND_TIMEOUT_S)
            wire.send_json(conn, wire.HEADER, {"stem": m.stem, "format": m.format, "plaintext_bytes": m.plaintext_bytes,
                                               "manifest_sha256": m.sha256})
        except OSError:
            sink.failed = True
            return "the client closed the connection"
        try:
            with open(admitted.age_path, "rb") as fh:
                reader = _HashingReader(fh)
                pyrage.decrypt_io(reader, sink, self._identities)
                reader.drain()
            sink.flush()
        except OSError as exc:
            return "the client closed the connection" if sink.failed else f"the ciphertext is damaged ({exc})"
        except pyrage.DecryptError as exc:
            return f"the ciphertext cannot be decrypted ({exc})"
        if reader.sha256() != m.ciphertext_sha256:
            return "the ciphertext changed while it was decrypted (its SHA-256 no longer matches the manifest)"
        if sink.sent != m.plaintext_bytes:
            return f"decrypted {sink.sent} bytes, the manifest says {m.plaintext_bytes}"
        return None


def _send_quietly(conn, doc: dict) -> bool:
    try:
        wire.send_json(conn, wire.END, doc)
        return True
    except OSError:
        return False


class _HashingReader(io.RawIOBase):
    """The ciphertext file as pyrage reads it, hashed on the way (the bytes decrypted are the bytes hashed)."""

    def __init__(self, fh):
        self._fh = fh
        self._hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._fh.readinto(buffer)
        if n:
            self._hash.update(memoryview(buffer)[:n])
        return n

    def drain(self) -> None:
        """Hash whatever pyrage left unread (trailing bytes would change the file's hash)."""
        while block := self._fh.read(SEND_CHUNK):
            self._hash.update(block)

    def sha256(self) -> str:
        return self._hash.hexdigest()


class _FrameSink:
    """pyrage's output: collects plaintext into frames of :data:`SEND_CHUNK` bytes and sends each."""

    def __init__(self, conn: socket.socket):
        self._conn = conn
        self._buf = bytearray()
        self.sent = 0
        self.failed = False

    def write(self, data) -> int:
        self._buf += data
        if len(self._buf) >= SEND_CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if not self._buf:
            return
        try:
            wire.send_frame(self._conn, wire.DATA, self._buf)
        except OSError:
            self.failed = True
            raise
        self.sent += len(self._buf)
        self._buf[:] = bytes(len(self._buf))  # do not leave plaintext in a buffer longer than needed
        self._buf.clear()


# -- the socket --------------------------------------------------------------------------------------------

class CustodianServer:
    """Listens on a Unix socket (mode 0660) and serves each connection in its own thread, at most
    ``max_clients`` at once; further clients wait in the listen queue."""

    def __init__(self, custodian: Custodian, socket_path: str | os.PathLike, *, max_clients: int = DEFAULT_MAX_CLIENTS,
                 group: str | None = None):
        if max_clients < 1:
            raise CustodianError("max_clients must be at least 1")
        self.custodian = custodian
        self.path = Path(socket_path)
        self._slots = threading.BoundedSemaphore(max_clients)
        self._group = group
        self._sock: socket.socket | None = None
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()  # guards _threads (accept loop adds, connection threads remove)
        self._count = 0

    def bind(self) -> None:
        _remove_stale_socket(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            old = os.umask(0o117)  # the socket file is created 0660, never wider
            try:
                sock.bind(str(self.path))
            finally:
                os.umask(old)
            os.chmod(self.path, 0o660)
            if self._group:
                import grp

                try:
                    os.chown(self.path, -1, grp.getgrnam(self._group).gr_gid)
                except KeyError:
                    raise CustodianError(f"--group {self._group!r}: no such group") from None
            sock.listen(64)
        except OSError as exc:
            sock.close()
            raise CustodianError(f"cannot listen on {self.path} ({exc.strerror or exc}); check that its directory "
                                 "exists and belongs to the custodian's user") from None
        except BaseException:
            sock.close()
            raise
        sock.settimeout(0.5)
        self._sock = sock
        logger.info("custodian listening on %s", self.path)

    def serve_forever(self, stop: threading.Event) -> None:
        if self._sock is None:
            self.bind()
        while not stop.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                self._slots.release()
                continue
            except OSError as exc:
                self._slots.release()
                if stop.is_set():
                    break
                logger.error("accepting a connection failed: %s", exc)
                continue
            self._count += 1
            thread = threading.Thread(target=self._connection, args=(conn,), name=f"CustodianConnection-{self._count}",
                                      daemon=True)
            with self._lock:
                self._threads.add(thread)
            thread.start()

    def _connection(self, conn: socket.socket) -> None:
        try:
            with conn:
                self.custodian.serve(conn, _peer(conn))
                _close_gently(conn)
        except Exception:  # a bug must not take the other viewers down; it is logged with its traceback
            logger.exception("serving a connection failed")
        finally:
            self._slots.release()
            with self._lock:
                self._threads.discard(threading.current_thread())

    def close(self, timeout: float = 10.0) -> None:
        """Stop listening, wait up to ``timeout`` for the connections in progress, remove the socket file."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("%s still runs after %.0f s; leaving it", thread.name, timeout)


def _close_gently(conn: socket.socket) -> None:
    """End the answer, then read away what the client still sent (at most 1 MiB, 1 s per read): closing a
    Unix socket with unread input resets the connection, and the client would lose the refusal."""
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(1.0)
        for _ in range(16):
            if not conn.recv(64 * 1024):
                break
    except OSError:
        pass


def _peer(conn: socket.socket) -> str:
    """``uid=U pid=P`` of the connecting process (SO_PEERCRED), for the audit line."""
    try:
        pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
    except OSError:
        return ""
    return f"uid={uid} pid={pid}"


def _remove_stale_socket(path: Path) -> None:
    """A socket file left by a custodian that died is removed; a live one or any other file is not."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise CustodianError(f"{path} exists and is not a socket; remove it or choose another --socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()
        logger.info("removed the stale socket %s", path)
        return
    finally:
        probe.close()
    raise CustodianError(f"another custodian already listens on {path}")


def load_custodian(*, store_dir, office_key, audit_log, identity, devices,
                   clock: Callable[[], datetime] | None = None) -> Custodian:
    """The custodian from its files (key files are refused when group or others may read them)."""
    from evidence.keys import load_device_public_keys, load_evidence_identities

    from ..catalog.office import open_office, utc_now

    identities = load_evidence_identities(identity)
    enrolled = load_device_public_keys(devices)
    office = open_office(store_dir, office_key, audit_log, clock=clock or utc_now)
    return Custodian(office, identities, enrolled)
