"""The device's append-only audit log: one signed, hash-chained JSON line per event.

Each line is a canonical JSON object (sorted keys, no spaces, ASCII)::

    {"event":..,"fields":{..},"hash":..,"prev":..,"seq":..,"sig":..,"ts":..,"v":1}

``hash`` is the SHA-256 of the line without ``hash`` and ``sig``; ``prev`` is the previous line's
``hash`` (64 zeros for the first line), so removing, reordering or editing any line breaks the
chain. ``sig`` is the device's Ed25519 signature (base64) over ``DOMAIN`` + those same bytes; the
domain prefix keeps an audit signature from ever being valid for a manifest signed with the same key.
What the file alone cannot show -- lines cut off its end, or the whole log replaced by an older
copy -- the published :attr:`AuditLog.head` shows: telemetry sends it, and
``verify_log(..., expected_head=...)`` checks a log against it.

**Stamp.** Fields that every line carries for a while: officer check-out makes ``{"officer": <id>}`` the
stamp from its ``officer_assigned`` line up to its ``officer_unassigned`` line (:meth:`AuditLog.restamp`
changes it together with the line that says why, under one lock), so each line written while the device
was assigned names the officer in its ``fields``. A line's own field of the same name wins.

A power loss can tear the last line. History is never rewritten: at the next start the torn bytes
stay in the file, and a ``log_recovered`` line that names their length and SHA-256 continues the
chain from the last good line, so :func:`verify_log` can tell a recorded torn write from tampering.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from base.canonical import canonical_json
from base.durable import fsync_dir
from base.errors import BodycamError, storage_error
from base.utctime import iso_utc

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
DOMAIN = b"bodycam-audit-v1\n"
GENESIS = "0" * 64
_TAIL_WINDOW = 1024 * 1024
_EVENT_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_KEYS = frozenset({"v", "ts", "seq", "event", "fields", "prev", "hash", "sig"})
_HEX64 = re.compile(r"[0-9a-f]{64}")

# -- Event names. Fields are free-form keyword arguments; the suggested ones are listed. ------------
LOG_CREATED = "log_created"                    # a new, empty log file was started
LOG_RECOVERED = "log_recovered"                # reason, after_seq, skipped_bytes, skipped_sha256
AGENT_STARTED = "agent_started"                # version, config (path + digest), device, profile, pre_event_mode
AGENT_STOPPING = "agent_stopping"              # reason (sigterm, command, low battery ...)
AGENT_STOPPED = "agent_stopped"                # clean shutdown completed
RECORDING_STARTED = "recording_started"        # incident_id, trigger (button/command/input), pre_event_s
RECORDING_STOPPED = "recording_stopped"        # incident_id, reason (button/command/storage/shutdown/fault)
RECORDING_REFUSED = "recording_refused"        # reason (storage_critical, camera_fault ...)
BUTTON_GESTURE = "button_gesture"              # gesture (hold/double/...), action
COMMAND_RECEIVED = "command_received"          # command, origin, command_id
COMMAND_REJECTED = "command_rejected"          # command, origin, reason (the first of a burst)
COMMAND_REJECTIONS = "command_rejections"      # counts (per code), total, bytes, since, until, ended (the rest)
SEGMENT_SEALED = "segment_sealed"              # stem, seq, ciphertext_sha256, bytes
SEGMENT_UPLOADED = "segment_uploaded"          # stem, ciphertext_sha256
SEGMENT_ACKNOWLEDGED = "segment_acknowledged"  # stem, ciphertext_sha256, receipt_sha256
SEGMENT_PURGED = "segment_purged"              # stem, ciphertext_sha256, policy
SEGMENT_DISCARDED = "segment_discarded"        # name, reason (spool recovery: incomplete write)
SEGMENT_QUARANTINED = "segment_quarantined"    # name, reason (spool recovery: untrusted evidence)
INCIDENT_CUT = "incident_cut"                  # incident_id, stem, seq, reason, last_frame_time (end marker)
SEGMENT_LOST = "segment_lost"                  # incident_id, segment_index, frames, reason (not stored at shutdown)
STORAGE_PRESSURE = "storage_pressure"          # level, free_bytes, reason (on level changes)
FRAMES_DROPPED = "frames_dropped"              # count, where (capture overrun)
CONFIG_CHANGED = "config_changed"              # source (file, "remote command <id>"), applied, changes, needs_restart
KEY_CHANGED = "key_changed"                    # which (device/recipient), old_id, new_id
OFFICER_ASSIGNED = "officer_assigned"          # officer, via (badge/command/restored), command_id, previous
OFFICER_UNASSIGNED = "officer_unassigned"      # officer, via (dock/command), command_id
BADGE_REFUSED = "badge_refused"                # uid, reason (a badge the table does not know, an unreadable table)

EVENTS = frozenset({
    LOG_CREATED, LOG_RECOVERED, AGENT_STARTED, AGENT_STOPPING, AGENT_STOPPED, RECORDING_STARTED,
    RECORDING_STOPPED, RECORDING_REFUSED, BUTTON_GESTURE, COMMAND_RECEIVED, COMMAND_REJECTED,
    SEGMENT_SEALED, SEGMENT_UPLOADED, SEGMENT_ACKNOWLEDGED, SEGMENT_PURGED, SEGMENT_DISCARDED,
    SEGMENT_QUARANTINED, INCIDENT_CUT, STORAGE_PRESSURE, FRAMES_DROPPED, CONFIG_CHANGED, KEY_CHANGED,
    COMMAND_REJECTIONS, SEGMENT_LOST, OFFICER_ASSIGNED, OFFICER_UNASSIGNED, BADGE_REFUSED,
})


class AuditError(BodycamError):
    """The audit log could not be opened or written."""


class AuditKeyMismatchError(AuditError):
    """The log's last entry is not signed by this device's key; continuing would hide that."""


@dataclass(frozen=True, slots=True)
class AuditHead:
    """Where the chain ends: publish it, and a truncated or rolled-back log becomes detectable."""

    seq: int
    hash: str

    def as_dict(self) -> dict:
        return {"seq": self.seq, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """A place in the file (1-based line number and byte offset) and what is wrong or was recovered."""

    line: int
    offset: int
    reason: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Result of :func:`verify_log`; ``ok`` is False from the first line that fails."""

    path: str
    lines: int
    head: AuditHead | None
    first_bad: AuditProblem | None
    #: Torn writes that the device recorded with a ``log_recovered`` line (not failures).
    recoveries: tuple[AuditProblem, ...]

    @property
    def ok(self) -> bool:
        return self.first_bad is None

    def summary(self) -> str:
        if self.first_bad:
            return (f"{self.path}: BAD at line {self.first_bad.line} (byte {self.first_bad.offset}): "
                    f"{self.first_bad.reason}; {self.lines} lines verified before it")
        head = f"head seq {self.head.seq} {self.head.hash[:16]}" if self.head else "empty"
        rec = f", {len(self.recoveries)} recorded torn write(s)" if self.recoveries else ""
        return f"{self.path}: OK, {self.lines} lines, {head}{rec}"


@dataclass(frozen=True, slots=True)
class _Entry:
    seq: int
    prev: str
    hash: str
    event: str
    fields: dict



def _check_event_name(event) -> None:
    if not isinstance(event, str) or not _EVENT_RE.fullmatch(event):
        raise AuditError(f"audit event name {event!r} must be 1-64 characters of a-z, 0-9 and '_'")

class AuditLog:
    """Appends signed, chained events to one file; see the module docstring for the format.

    A note on locking: one ``threading.Lock`` covers building a line (it needs the current head),
    writing it with a single ``write`` on an ``O_APPEND`` descriptor, the fsync, and moving the
    head. So lines from different threads never interleave and the chain follows file order. Holding
    the lock through the fsync is deliberate: the head must not move past a line that is not yet
    durable. An append therefore blocks its caller for one fsync (milliseconds on an SD card): call
    it from worker threads, never from the camera callback or paho's network thread.
    """

    def __init__(self, path: str | os.PathLike, signing_key: Ed25519PrivateKey, *,
                 clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self._key = signing_key
        self._public = signing_key.public_key()
        self._clock = clock
        self._lock = threading.Lock()
        self._dirty: str | None = None
        self._stamp: dict = {}
        existed = self.path.exists()
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise storage_error(exc, self.path, "opening the audit log") from exc
        try:
            if not existed:
                fsync_dir(self.path.parent, "the audit log directory")
            self._head, self._good_end, junk_reason = self._find_tail()
            size = self._size()
            if junk_reason:
                with self._lock:
                    self._append_recovery(junk_reason)
            elif size == 0:
                self.append(LOG_CREATED, existing_empty_file=existed)
        except BaseException:
            os.close(self._fd)
            raise

    # ------------------------------------------------------------------ public

    @property
    def head(self) -> AuditHead:
        with self._lock:
            return self._head

    def append(self, event: str, /, **fields) -> AuditHead:
        """Write one event durably and return the new head.

        Raises :class:`AuditError` for a bad event name or fields that are not JSON values, and
        :class:`StorageError` when the card refuses; a half-written line is then marked with a
        ``log_recovered`` line before the next event.
        """
        return self.append_many([(event, fields)])

    def append_many(self, events: list[tuple[str, dict]]) -> AuditHead:
        """Write several ``(event, fields)`` durably in one write and one fsync; return the new head.

        Each is its own signed line chained to the one before, exactly as with :meth:`append`; a caller
        with many events at once (the back office's retention run) pays one fsync for them instead of one
        each. Errors as :meth:`append`: a refused event writes none of them.
        """
        for event, _ in events:
            _check_event_name(event)
        with self._lock:
            self._ready_locked()
            return self._append_locked(events) if events else self._head

    def restamp(self, stamp: dict, event: str, /, **fields) -> AuditHead:
        """Write ``event`` (under the old stamp), then make ``stamp`` the fields of every later line ({}: none).

        Line and change happen under one lock, so no line of another thread falls between them: in file
        order, every line after this one carries ``stamp`` until the next restamp. If the line cannot be
        written the stamp stays as it was and the error is raised, as for :meth:`append`.
        """
        try:
            canonical_json(stamp)
        except (TypeError, ValueError) as exc:
            raise AuditError(f"audit stamp must be JSON values: {exc}") from None
        _check_event_name(event)
        with self._lock:
            self._ready_locked()
            head = self._append_locked([(event, fields)])
            self._stamp = dict(stamp)
            return head

    @property
    def stamp(self) -> dict:
        """The fields every line written now carries (a copy)."""
        with self._lock:
            return dict(self._stamp)

    def reload_if_changed(self) -> bool:
        """Take up the chain where another writer left it, if the file grew since this one last wrote.

        For a log shared by several processes (the back office's): each holds an inter-process lock
        around this and :meth:`append`, so every line continues the newest one. True if it re-read.
        """
        with self._lock:
            if self._fd is None or self._size() == self._good_end:
                return False
            self._head, self._good_end, junk_reason = self._find_tail()
            if junk_reason:
                self._append_recovery(junk_reason)
            return True

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ writing (lock held)

    def _ready_locked(self) -> None:
        """Refuse to write to a closed log; mark what a failed write left before the next line."""
        if self._fd is None:
            raise AuditError(f"audit log {self.path} is closed")
        if self._dirty:
            self._append_recovery(self._dirty)

    def _append_locked(self, events: list[tuple[str, dict]], prefix: bytes = b"") -> AuditHead:
        head, lines = self._head, []
        for event, fields in events:
            if self._stamp:  # officer check-out: who was assigned, on every line while they are
                fields = {**self._stamp, **fields}
            line, digest = _make_line(self._key, head.seq + 1, head.hash, event, fields, iso_utc(self._clock()))
            lines.append(line)
            head = AuditHead(head.seq + 1, digest)
        event = events[0][0]
        data = prefix + b"".join(lines)
        written = 0
        try:
            view = memoryview(data)
            while written < len(data):
                written += os.write(self._fd, view[written:])
        except OSError as exc:
            # Part of the lines may be in the file; the next append marks what follows the last head.
            self._dirty = f"a write failed half-way ({exc.strerror or exc})"
            raise storage_error(exc, self.path, f"writing audit event {event}") from exc
        self._head = head
        self._good_end = self._size()
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise storage_error(exc, self.path, f"syncing audit event {event}") from exc
        return self._head

    def _append_recovery(self, reason: str) -> None:
        """Mark the bytes after the last good line as skipped and continue the chain past them."""
        junk = self._read(self._good_end, self._size() - self._good_end)
        if not junk:
            self._dirty = None
            return
        logger.warning("audit log %s: %d bytes after seq %d are not a valid entry (%s); "
                       "kept in the file and marked with %s", self.path, len(junk), self._head.seq,
                       reason, LOG_RECOVERED)
        self._append_locked([(LOG_RECOVERED, {
            "reason": reason, "after_seq": self._head.seq, "skipped_bytes": len(junk),
            "skipped_sha256": hashlib.sha256(junk).hexdigest()})], prefix=b"\n")
        self._dirty = None

    # ------------------------------------------------------------------ reading the tail at start-up

    def _find_tail(self) -> tuple[AuditHead, int, str | None]:
        """(head, byte offset after the last good line, reason the bytes after it are bad or None)."""
        size = self._size()
        start = max(0, size - _TAIL_WINDOW)
        while True:
            data = self._read(start, size - start)
            base = start
            if start:
                cut = data.find(b"\n") + 1  # the window starts mid-line: skip that fragment
                data, base = data[cut:], start + cut
            found = self._last_good_line(data, base)
            if found or start == 0:
                break
            start = 0
        if not found:
            head, end = AuditHead(-1, GENESIS), 0
        else:
            head, end = found
        if end == size:
            return head, end, None
        junk = self._read(end, size - end)
        return head, end, _describe_junk(junk, self._public)

    def _last_good_line(self, data: bytes, base: int) -> tuple[AuditHead, int] | None:
        end = len(data)
        while end > 0:
            start = data.rfind(b"\n", 0, end - 1) + 1
            raw = data[start:end]
            if raw.endswith(b"\n"):
                entry, problem = _check_line(raw, self._public)
                if entry and problem is None:
                    return AuditHead(entry.seq, entry.hash), base + end
                if entry and problem.startswith("signature"):
                    raise AuditKeyMismatchError(
                        f"audit log {self.path}: entry seq {entry.seq} is not signed by this device's key "
                        "(the device key was changed, or the log was tampered with); keep this file as "
                        "evidence, move it aside and start a new log")
            end = start
        return None

    def _size(self) -> int:
        try:
            return os.fstat(self._fd).st_size
        except OSError as exc:
            raise storage_error(exc, self.path, "examining the audit log") from exc

    def _read(self, offset: int, length: int) -> bytes:
        chunks = []
        try:
            while length > 0:
                chunk = os.pread(self._fd, length, offset)
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
                length -= len(chunk)
        except OSError as exc:
            raise storage_error(exc, self.path, "reading the audit log") from exc
        return b"".join(chunks)


class AuditWriter(threading.Thread):
    """Writes audit lines for threads that must not wait for the card.

    :meth:`AuditLog.append` blocks its caller for an fsync. The recorder thread (recording start and
    stop, frame losses), the controls thread (a button hold must start the recording at once) and the
    sealer hand their lines over here instead; this thread writes them in the order they came, so a
    segment's ``segment_sealed`` never precedes its ``recording_started``. A line's ``ts`` is when it
    became durable, normally milliseconds after the event. A line the card refuses is logged with its
    content and shown as :attr:`fault` until a later line is written.
    """

    def __init__(self, log: AuditLog):
        super().__init__(name="AuditWriterThread", daemon=True)
        self.log = log
        self._queue: queue.Queue = queue.Queue()
        self.fault: BaseException | None = None
        self.written = 0

    def append(self, event: str, /, **fields) -> None:
        """Hand one line over; never blocks. A bad event name is the caller's bug and raises here."""
        _check_event_name(event)
        self._queue.put((event, fields))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every line handed over so far is written (or failed); False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        if not self.is_alive():
            self._drain(block=False)  # not started (tools, tests) or ended: write on the caller's thread
        return done.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then end."""
        self._queue.put(_STOP_WRITER)
        if self.is_alive():
            self.join(timeout)
            if self.is_alive():
                logger.error("audit writer did not finish within %.0f s", timeout)
        else:
            self._drain(block=False)

    def run(self) -> None:
        self._drain(block=True)

    def _drain(self, block: bool) -> None:
        while True:
            try:
                item = self._queue.get(block)
            except queue.Empty:
                return
            if item is _STOP_WRITER:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            event, fields = item
            try:
                self.log.append(event, **fields)
            except BodycamError as exc:
                logger.error("audit line %s %s not written: %s", event, fields, exc)
                self.fault = exc
            else:
                self.fault = None
                self.written += 1


_STOP_WRITER = object()


def verify_log(path: str | os.PathLike, public_key: Ed25519PublicKey,
               expected_head: AuditHead | None = None) -> AuditReport:
    """Check every line's hash, signature and chain link; report the first bad line.

    A stretch of bad bytes counts as a recorded torn write (listed in ``recoveries``), not as a
    failure, only when the very next line is a genuine ``log_recovered`` entry that continues the
    chain and names exactly those bytes. ``expected_head`` (as published earlier by the device)
    additionally detects lines cut off the end and a log replaced by an older copy.
    """
    path = Path(path)
    head, lines, offset, line_no = AuditHead(-1, GENESIS), 0, 0, 0
    first_bad, recoveries = None, []
    expected_hash_seen = None
    junk: _Junk | None = None
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise storage_error(exc, path, "opening the audit log for verification") from exc
    with f:
        for raw in f:
            line_no += 1
            entry, problem = _check_line(raw, public_key)
            if problem is None and (entry.seq != head.seq + 1 or entry.prev != head.hash):
                problem = (f"chain broken: expected seq {head.seq + 1} after hash {head.hash[:16]}…, "
                           f"found seq {entry.seq} after {entry.prev[:16]}… (a line was removed, "
                           "inserted or reordered)")
            if junk is None:
                if problem is None:
                    head, lines = AuditHead(entry.seq, entry.hash), lines + 1
                else:
                    junk = _Junk(AuditProblem(line_no, offset, problem))
                    junk.feed(raw)
            elif problem is None and entry.event == LOG_RECOVERED:
                if not junk.covered_by(entry.fields):
                    first_bad = junk.problem
                    break
                recoveries.append(AuditProblem(line_no, offset, f"torn write of {junk.length} bytes after seq "
                                               f"{head.seq} recorded: {entry.fields.get('reason')}"))
                head, lines, junk = AuditHead(entry.seq, entry.hash), lines + 1, None
            else:
                junk.feed(raw)
            if expected_head is not None and junk is None and head.seq == expected_head.seq:
                expected_hash_seen = head.hash
            offset += len(raw)
    if first_bad is None and junk is not None:
        first_bad = junk.problem
    if first_bad is None and expected_head is not None:
        if head.seq < expected_head.seq:
            first_bad = AuditProblem(line_no, offset, (
                f"log ends at seq {head.seq} but seq {expected_head.seq} was published earlier: entries were "
                "cut off the end (truncated) or the log was rolled back to an older copy"))
        elif expected_hash_seen != expected_head.hash:
            first_bad = AuditProblem(line_no, offset, (
                f"entry seq {expected_head.seq} differs from the published head {expected_head.hash[:16]}…: "
                "the log was replaced"))
    return AuditReport(str(path), lines, None if head.seq < 0 else head, first_bad, tuple(recoveries))


class _Junk:
    """Bytes between the last good line and a ``log_recovered`` line, hashed as the device saw them.

    The device writes ``b"\\n"`` before the marker, so the junk is the stretch minus its final newline.
    """

    def __init__(self, problem: AuditProblem):
        self.problem = problem
        self._hash = hashlib.sha256()
        self.length = 0
        self._newline_held = False

    def feed(self, raw: bytes) -> None:
        if self._newline_held:
            self._hash.update(b"\n")
            self.length += 1
        body = raw[:-1] if raw.endswith(b"\n") else raw
        self._hash.update(body)
        self.length += len(body)
        self._newline_held = raw.endswith(b"\n")

    def covered_by(self, fields: dict) -> bool:
        return fields.get("skipped_bytes") == self.length and fields.get("skipped_sha256") == self._hash.hexdigest()


def _make_line(key: Ed25519PrivateKey, seq: int, prev: str, event: str, fields: dict, ts: str) -> tuple[bytes, str]:
    body = {"v": FORMAT_VERSION, "ts": ts, "seq": seq, "event": event, "fields": fields, "prev": prev}
    try:
        body_bytes = canonical_json(body)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"audit event {event}: fields must be JSON values (str, number, bool, None, "
                         f"list, dict with str keys): {exc}") from None
    digest = hashlib.sha256(body_bytes).hexdigest()
    sig = base64.b64encode(key.sign(DOMAIN + body_bytes)).decode("ascii")
    return canonical_json({**body, "hash": digest, "sig": sig}) + b"\n", digest


def _check_line(raw: bytes, public_key: Ed25519PublicKey) -> tuple[_Entry | None, str | None]:
    """(entry, None) for a good line; (entry, reason) if it parses but fails; (None, reason) otherwise."""
    if b"\0" in raw and not raw.strip(b"\0\n"):
        return None, f"{len(raw)} zero bytes (file blocks lost at power loss)"
    if not raw.endswith(b"\n"):
        return None, f"incomplete last line ({len(raw)} bytes without newline: a write torn by power loss)"
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, "not a JSON line"
    if not isinstance(doc, dict) or set(doc) != _KEYS:
        return None, "not an audit entry (wrong set of keys)"
    seq, prev, digest, event, fields, sig = (doc[k] for k in ("seq", "prev", "hash", "event", "fields", "sig"))
    if (doc["v"] != FORMAT_VERSION or isinstance(seq, bool) or not isinstance(seq, int) or not isinstance(event, str)
            or not isinstance(fields, dict) or not isinstance(prev, str) or not isinstance(digest, str)
            or not isinstance(sig, str) or not isinstance(doc["ts"], str)):
        return None, "not an audit entry (a value has the wrong type or version)"
    entry = _Entry(seq, prev, digest, event, fields)
    body = {k: v for k, v in doc.items() if k not in ("hash", "sig")}
    body_bytes = canonical_json(body)
    if hashlib.sha256(body_bytes).hexdigest() != digest or not _HEX64.fullmatch(digest):
        return entry, f"hash mismatch at seq {seq}: the entry's content was altered"
    try:
        public_key.verify(base64.b64decode(sig, validate=True), DOMAIN + body_bytes)
    except (InvalidSignature, binascii.Error, ValueError):
        return entry, f"signature invalid at seq {seq}: forged, or signed by another key"
    if canonical_json(doc) + b"\n" != raw:
        return entry, f"line of seq {seq} is not in canonical form: bytes were altered"
    return entry, None


def _describe_junk(junk: bytes, public_key: Ed25519PublicKey) -> str:
    first = junk.split(b"\n", 1)[0] + (b"\n" if b"\n" in junk else b"")
    _, problem = _check_line(first, public_key)
    return f"{len(junk)} bytes after the last good entry are unreadable: {problem or 'out of chain order'}"



