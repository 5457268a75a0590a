"""What every lifecycle step needs besides the database: the store, the signed audit log and the clock.

The clock is injected so tests can travel in time; the audit log is :class:`evidence.audit.AuditLog` (the
device's signed, hash-chained format) signed with the back office's own key kind (``office.key``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

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


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Office:
    store_dir: Path
    log: AuditLog
    clock: Callable[[], datetime] = field(default=utc_now)

    def now(self) -> datetime:
        return self.clock()

    def record(self, event: str, **fields) -> None:
        self.log.append(event, **fields)

    def close(self) -> None:
        self.log.close()


def open_office(store_dir: str | os.PathLike, key_path: str | os.PathLike, log_path: str | os.PathLike,
                clock: Callable[[], datetime] = utc_now) -> Office:
    key = load_office_signing_key(key_path)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return Office(Path(store_dir), AuditLog(log_path, key.private, clock=lambda: clock().timestamp()), clock)
