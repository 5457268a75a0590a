"""What every lifecycle step needs besides the database: the store, the signed audit log and the clock.

The clock is injected so tests can travel in time; the audit log is :class:`evidence.audit.AuditLog` (the
device's signed, hash-chained format) signed with the back office's own key kind (``office.key``), shared
by several processes through :class:`SharedAuditLog`.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from base.errors import storage_error
from evidence.audit import AuditLog
from evidence.keys import load_office_signing_key

# Back-office audit events (fields named in the comments).
SEGMENT_CATALOGED = "segment_cataloged"      # site, device, incident_id, stem, ciphertext_sha256, verification
HOLD_PLACED = "hold_placed"                  # hold, incident, case_reference, reason, by
HOLD_LIFTED = "hold_lifted"                  # hold, incident, decision, proposed_by, approved_by
DECISION_PROPOSED = "decision_proposed"      # decision, kind, incident, hold, reason, by
DECISION_APPROVED = "decision_approved"      # decision, kind, incident, proposed_by, approved_by
DECISION_REFUSED = "decision_refused"        # decision, by, reason (self-approval, missing role)
DELETION_STARTED = "deletion_started"        # tombstone, incident, rule, by, segments (stem, hashes, bytes)
INCIDENT_DELETED = "incident_deleted"        # tombstone, incident, rule, files_removed
RETENTION_RUN = "retention_run"              # now, deleted, held, resumed, dry_run
SEGMENT_AFTER_DELETION = "segment_after_deletion"  # incident, stem, ciphertext_sha256 (device offline too long)
SITE_POLICY_CHANGED = "site_policy_changed"  # site, rule, shift_hours, incidents (whose expiry moved), by
USER_CHANGED = "user_changed"                # user, created, roles_added, roles, password_set, disabled, active
ACCESS = "access"                            # access, incident, kind (page, playback, export), purpose, by, via
ACCESS_REFUSED = "access_refused"            # incident, kind, by, via, reason
REPORT_READ = "report_read"                  # kind, parameters, by, via
REPORT_REFUSED = "report_refused"            # kind, parameters, by, via, reason
INCIDENT_ATTRIBUTED = "incident_attributed"  # incident, officer, stem (the verified manifest that names them)
OFFICER_MISMATCH = "officer_mismatch"        # incident, officer (kept), manifest_officer, stem
# The key custodian (backoffice/custody): tickets for an access, and every decryption or refusal.
TICKET_ISSUED = "ticket_issued"              # access, incident, kind, by, segments, expires_at
SEGMENT_DECRYPTED = "segment_decrypted"      # access, incident, stem, kind, purpose, by, bytes, ciphertext_sha256
DECRYPTION_INTERRUPTED = "decryption_interrupted"  # access, incident, stem, by, sent, reason (stream broke off)
DECRYPTION_REFUSED = "decryption_refused"    # code, reason, stem; access, incident, by, purpose once the ticket verified
PACKAGE_EXPORTED = "package_exported"        # access, incident, by, purpose, segments, mp4_sha256, zip_sha256, bytes
LOGIN = "login"                              # by, via
LOGIN_FAILED = "login_failed"                # username (as typed), via, reason (password, locked), failures
LOGIN_LOCKED = "login_locked"                # username, via, failures, until
LOGOUT = "logout"                            # by, via, reason (asked, idle, absolute)


#: The log and its lock: group-writable where the umask allows (the services' UMask=0007), since the review
#: app runs as its own user in the receiver's group; elsewhere (umask 022, 027) they stay 0640.
SHARED_MODE = 0o660


class SharedAuditLog:
    """The office audit log, shared by the receiver, the retention timer, the commands and the review app
    (separate processes): each open and append holds an exclusive ``flock`` on ``<log>.lock`` and first
    takes up the chain where the other writers left it, so their lines form one chain."""

    def __init__(self, path: Path, signing_key, clock: Callable[[], float]):
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        with self._locked():
            try:  # create it with the shared mode before AuditLog opens it (which would make it 0640)
                os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, SHARED_MODE))
            except OSError as exc:
                raise storage_error(exc, path, "opening the office audit log") from exc
            self._log = AuditLog(path, signing_key, clock=clock)

    @contextmanager
    def _locked(self):
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, SHARED_MODE)
        except OSError as exc:
            raise storage_error(exc, self._lock_path, "opening the audit log's lock") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    @property
    def head(self):
        return self._log.head

    def append(self, event: str, /, **fields):
        return self.append_many([(event, fields)])

    def append_many(self, events: list[tuple[str, dict]]):
        """Several lines under one lock and one fsync (:meth:`evidence.audit.AuditLog.append_many`)."""
        with self._locked():
            self._log.reload_if_changed()
            return self._log.append_many(events)

    def close(self) -> None:
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Office:
    store_dir: Path
    log: SharedAuditLog
    #: The office key: signs the log (through ``log``) and the tombstones.
    signer: object
    clock: Callable[[], datetime] = field(default=utc_now)
    #: Where the steps come from when the caller does not say (a command: ``cli:<OS account>``); written
    #: into every line as ``via``. None (the receiver, tests): no ``via``.
    via: str | None = None

    def now(self) -> datetime:
        return self.clock()

    def record(self, event: str, **fields) -> None:
        self.record_many([(event, fields)])

    def record_many(self, events: list[tuple[str, dict]]) -> None:
        """Several audit lines, durable together (one fsync): for steps that happen to many at once."""
        if self.via is not None:
            events = [(event, {**fields, "via": fields.get("via", self.via)}) for event, fields in events]
        self.log.append_many(events)

    def close(self) -> None:
        self.log.close()


def open_office(store_dir: str | os.PathLike, key_path: str | os.PathLike, log_path: str | os.PathLike,
                clock: Callable[[], datetime] = utc_now, via: str | None = None) -> Office:
    key = load_office_signing_key(key_path)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return Office(Path(store_dir), SharedAuditLog(log_path, key.private, lambda: clock().timestamp()), key, clock,
                  via)
