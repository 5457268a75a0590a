"""The evidence stage on the device: segments in, sealed files in the spool out.

:class:`EvidenceStage` opens, in order, what sealing needs (signing key, recipients, chain state, audit
log, spool with recovery, whose every action becomes a signed audit line) and hands the recorder a
storage gate. If the agent stopped in the middle of an incident (crash, power loss), it seals that
incident's end marker before anything new is recorded (evidence.seal). :class:`SealerThread` takes
segments from the recorder over a small bounded queue and streams each one's ciphertext into the
spool as it is encrypted (no segment's ciphertext is ever whole in RAM). A slow card or a busy CPU
pushes back on the recorder, whose frame queue then overflows visibly (an overrun alarm) instead of
the camera stalling.
Encryption never runs on the camera thread, and plaintext never touches the disk.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Callable

from camera.segment import Segment

from evidence import audit
from evidence.audit import AuditLog, AuditWriter
from base.durable import write_atomically
from base.utctime import iso_utc
from evidence.chain import ChainState
from .config import Config
from .diskspace import DiskPressure, PressureLevel
from base.errors import BodycamError, ConfigError
from evidence.keys import load_recipients, load_signing_key, recipient_key_id
from .recorder import FramesLost, StateChanged
from evidence.seal import Sealer, verify_manifest
from evidence.spool import Spool

logger = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
#: How often a recorder waiting for room in the full sealer queue looks again.
PUT_POLL_S = 0.05
#: After giving up: how long the sealer may take to finish the write it is in.
GIVE_UP_JOIN_S = 10.0
KEYS_FILE = "keys.json"
#: Incidents whose officer the sealer remembers until their final segment (normally one at a time).
INCIDENTS_REMEMBERED = 16
_STOP = object()


def clock_sync_state() -> str:
    """What the manifest says about the wall clock: systemd-timesyncd's flag file, else unknown."""
    if Path("/run/systemd/timesync/synchronized").exists():
        return "ntp-synchronized"
    return "unsynchronized"


class EvidenceStage:
    """Keys, chain, spool and audit log of one device, opened from config."""

    def __init__(self, cfg: Config):
        ev, st = cfg.evidence, cfg.storage
        if not ev.recipients:
            raise ConfigError(f"{cfg.source}: evidence.recipients is empty; add the municipality's evidence.pub "
                              "(made with 'bodycam keys evidence') before recording")
        self.signing_key = load_signing_key(ev.device_key, device_id=None)
        recipients = load_recipients(ev.recipients)
        os.makedirs(ev.state_dir, exist_ok=True)
        chain = ChainState.load(ev.state_dir)
        public = self.signing_key.public
        # The audit log opens before the spool, so that what recovery removes or moves aside is signed.
        os.makedirs(Path(st.audit_log).parent, exist_ok=True)
        self.audit = AuditLog(st.audit_log, self.signing_key.private)
        self.spool = Spool.open(st.spool_dir, verify_manifest=lambda m: verify_manifest(m, public),
                                committed_seq=chain.seq)
        self._audit_recovery(self.spool.last_recovery)
        self.sealer = Sealer(device_id=cfg.device.id, site=cfg.device.site, recipients=recipients,
                             signing_key=self.signing_key, chain=chain)
        if self.sealer.catch_up(self.spool.newest_manifest()):
            logger.warning("chain head adopted from the spool (the agent stopped between writing a segment "
                           "and recording it in the chain state)")
        #: The end marker sealed at this start for an incident the restart cut off, if any.
        self.cut = self._close_cut_incident()
        self.disk = DiskPressure(st.spool_dir, st.warn_free_mib, st.critical_free_mib)
        self.key_ids = {"device": self.signing_key.key_id,
                        "recipients": sorted(recipient_key_id(r) for r in recipients)}
        self._audit_key_changes(Path(ev.state_dir) / KEYS_FILE)
        #: For lines from threads that must not wait for the card (recorder, controls, sealer).
        self.audit_writer = AuditWriter(self.audit)
        self.audit_writer.start()
        #: Who carries the device now (officer check-out; the runtime sets it when that is enabled).
        self.current_officer: Callable[[], str | None] = lambda: None
        self._incident_officers: dict[str, str | None] = {}  # the sealer thread's alone

    def officer_of(self, segment: Segment) -> str | None:
        """The officer a segment's manifest names: whoever was assigned when its incident's first segment was
        sealed, so that every segment of an incident names the same one (sealer thread only)."""
        officers = self._incident_officers
        if segment.incident_id not in officers:
            if len(officers) >= INCIDENTS_REMEMBERED:  # incidents whose final segment never came (a fault)
                del officers[next(iter(officers))]
            officers[segment.incident_id] = self.current_officer()
        return officers[segment.incident_id]

    def incident_sealed(self, segment: Segment) -> None:
        """Its final segment is stored: the incident's officer need not be remembered any more."""
        if segment.final:
            self._incident_officers.pop(segment.incident_id, None)

    def _close_cut_incident(self):
        """If the newest sealed segment is not its incident's final one, the agent stopped mid-incident:
        the rest was in RAM. Say so in the chain itself, before anything new is sealed."""
        newest = self.spool.newest_manifest()
        if newest is None:
            return None
        last = verify_manifest(newest, self.signing_key.public)
        if last.final:
            return None
        chain = self.sealer.chain
        if last.seq != chain.seq:
            logger.error("incident %s ends without a final segment at seq %d, but the chain head is at seq %d; "
                         "cannot mark the cut", last.incident_id, last.seq, chain.seq)
            return None
        sealed = self.sealer.seal_end_marker(incident_id=last.incident_id, segment_index=last.segment_index + 1,
                                             last_frame_time=last.end_time, reason="restart",
                                             clock_sync=clock_sync_state())
        self.spool.store(sealed)
        self.sealer.commit(sealed)
        self.audit.append(audit.INCIDENT_CUT, incident_id=last.incident_id, stem=sealed.stem, seq=sealed.seq,
                          reason="restart", last_frame_time=last.end_time)
        logger.warning("incident %s was cut by a restart after its segment %d (last frame sealed %s); sealed "
                       "end marker %s", last.incident_id, last.segment_index, last.end_time, sealed.stem)
        return sealed

    def _audit_recovery(self, report) -> None:
        """One signed line per file the spool's recovery removed or quarantined, naming it and why."""
        for action in report.discarded:
            self.audit.append(audit.SEGMENT_DISCARDED, name=action.name, reason=action.reason)
        for action in report.quarantined:
            self.audit.append(audit.SEGMENT_QUARANTINED, name=action.name, reason=action.reason)
        if report.purges_completed:
            self.audit.append(audit.SEGMENT_PURGED, stems=list(report.purges_completed),
                              policy="interrupted purge completed at start-up")

    def _audit_key_changes(self, path: Path) -> None:
        """Compare the keys in use with the last run's; every difference becomes a key_changed line."""
        try:
            previous = json.loads(path.read_bytes())
        except FileNotFoundError:
            previous = None
        except (OSError, ValueError) as exc:
            logger.warning("%s unreadable (%s); recording the current keys afresh", path, exc)
            previous = {}
        if previous == self.key_ids:
            return
        if previous is not None:
            for which in ("device", "recipients"):
                if previous.get(which) != self.key_ids[which]:
                    self.audit.append(audit.KEY_CHANGED, which=which, old_id=previous.get(which),
                                      new_id=self.key_ids[which])
                    logger.warning("%s key changed: %s -> %s", which, previous.get(which), self.key_ids[which])
        write_atomically(path, json.dumps(self.key_ids, sort_keys=True).encode() + b"\n", what="writing the key ids")

    def chain_head(self) -> dict:
        """The newest sealed seq and its manifest hash, published (status, telemetry) so that a back office
        can tell with ``bodycam verify --head`` whether segments after the newest one it holds are gone."""
        seq, digest = self.sealer.chain.head()
        return {"seq": seq, "manifest_sha256": digest}

    def storage_gate(self) -> str | None:
        """The recorder asks before each START: a reason to refuse when storage is critical."""
        snapshot = self.disk.measure()
        return snapshot.reason if snapshot.level is PressureLevel.CRITICAL else None

    def record_event(self, event) -> None:
        """Recorder listener: recording starts, stops and losses go into the audit log (without waiting)."""
        if isinstance(event, StateChanged):
            trigger = event.trigger
            origin = trigger.origin if trigger else "internal"
            if event.state.recording and not event.previous.recording:
                self.audit_writer.append(audit.RECORDING_STARTED, incident_id=event.incident_id, trigger=origin)
            elif event.previous.recording and not event.state.recording:
                self.audit_writer.append(audit.RECORDING_STOPPED, incident_id=event.incident_id, reason=origin)
        elif isinstance(event, FramesLost):
            self.audit_writer.append(audit.FRAMES_DROPPED, count=event.count, incident_id=event.incident_id,
                              where="capture queue")

    def close(self) -> None:
        """Write the handed-over audit lines, then close the log."""
        self.audit_writer.stop()
        self.audit.close()


class SealerThread(threading.Thread):
    """Seals each segment, stores it durably, advances the chain, writes the audit line.

    Stopping is bounded, whatever the card does. :meth:`stop` lets the sealer finish what is queued
    for ``timeout`` seconds; a card that keeps refusing would make it retry forever, so after that
    it gives up: the segment being retried and every segment still queued or handed over later is
    reported lost (log and a ``segment_lost`` audit line; :attr:`lost` counts them), and :meth:`put`
    stops blocking. Nothing already stored is touched.

    A note on locking: ``_lock`` makes "the queue is closed" and "a segment was queued" exclusive, so
    no segment can slip into the queue after the sealer has taken its last one.
    """

    def __init__(self, stage: EvidenceStage, queue_segments: int = 2):
        super().__init__(name="SealerThread", daemon=True)
        self.stage = stage
        self._queue: queue.Queue = queue.Queue(maxsize=queue_segments)
        self._lock = threading.Lock()
        self._closed = False
        self._stopping = threading.Event()
        self.sealed = 0
        #: Segments given up at shutdown, each reported in the log and the audit log.
        self.lost = 0
        #: The last error, shown as a fault until a segment is stored again.
        self.fault: BaseException | None = None

    def put(self, segment: Segment) -> None:
        """The recorder's segment sink. Blocks while the queue is full (that is the back-pressure), but not
        past a :meth:`stop` that gave up: a segment arriving then is reported lost."""
        if not self._offer(segment, deadline=None):
            self._report_lost(segment, "arrived after the sealer had stopped")

    def stop(self, timeout: float = 30.0) -> None:
        """Seal what is queued, then end; after ``timeout`` seconds give up on what is left (reported lost)."""
        deadline = time.monotonic() + timeout
        if self._offer(_STOP, deadline):
            self.join(max(0.0, deadline - time.monotonic()))
        if not self.is_alive():
            return
        logger.error("sealer did not finish within %.0f s (%s); giving up on the segments it still holds",
                     timeout, self.fault or "still sealing")
        self._stopping.set()
        with self._lock:
            self._closed = True
            left = self._take_all()
            self._queue.put_nowait(_STOP)  # there is room: the queue was just emptied
        for segment in left:
            self._report_lost(segment, f"not stored before shutdown ({self.fault or 'sealer busy'})")
        self.join(GIVE_UP_JOIN_S)
        if self.is_alive():
            logger.error("sealer thread still busy %.0f s after giving up; the segment it holds may be lost",
                         GIVE_UP_JOIN_S)

    def run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                with self._lock:  # close: from now on put() reports instead of queueing
                    self._closed = True
                    late = self._take_all()
                for segment in late:  # handed over just after the stop request
                    self._seal_until_stored(segment)
                return
            self._seal_until_stored(item)

    def _offer(self, item, deadline: float | None) -> bool:
        """Queue ``item``, waiting for room until ``deadline`` (None: until closed); False if it was not."""
        while deadline is None or time.monotonic() < deadline:
            with self._lock:
                if self._closed:
                    return False
                try:
                    self._queue.put_nowait(item)
                    return True
                except queue.Full:
                    pass
            self._stopping.wait(PUT_POLL_S)
        return False

    def _take_all(self) -> list[Segment]:
        items = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return [i for i in items if i is not _STOP]
            items.append(item)

    def _report_lost(self, segment: Segment, reason: str) -> None:
        with self._lock:
            self.lost += 1
        logger.error("segment %d of incident %s (%d frames from %s) is lost: %s", segment.index,
                     segment.incident_id, segment.frame_count, iso_utc(segment.start_wall, millis=False), reason)
        self.stage.audit_writer.append(audit.SEGMENT_LOST, incident_id=segment.incident_id,
                                       segment_index=segment.index, frames=segment.frame_count,
                                       start_time=iso_utc(segment.start_wall, millis=False), reason=reason)

    def _seal_until_stored(self, segment: Segment) -> None:
        """Never give up on a segment while the agent runs: its plaintext exists nowhere else."""
        stage = self.stage
        officer = stage.officer_of(segment)
        while not self._stopping.is_set():
            try:
                with stage.spool.begin(stage.sealer.next_stem()) as out:
                    sealed = stage.sealer.seal(segment, clock_sync=clock_sync_state(), out=out, officer=officer)
                    out.commit(sealed.manifest, sealed.seq, sealed.ciphertext_sha256)
                stage.sealer.commit(sealed)
            except BodycamError as exc:
                if self.fault is None or str(exc) != str(self.fault):
                    logger.error("segment %d of incident %s not stored yet: %s (retrying every %.0f s)",
                                 segment.index, segment.incident_id, exc, RETRY_SECONDS)
                self.fault = exc
                self._stopping.wait(RETRY_SECONDS)
                continue
            self.fault = None
            self.sealed += 1
            stage.incident_sealed(segment)
            stage.audit_writer.append(audit.SEGMENT_SEALED, stem=sealed.stem, seq=sealed.seq,
                               incident_id=segment.incident_id, segment_index=segment.index,
                               ciphertext_sha256=sealed.ciphertext_sha256, bytes=sealed.ciphertext_bytes)
            logger.info("sealed %s (incident %s, segment %d%s)", sealed.stem, segment.incident_id,
                        segment.index, ", final" if segment.final else "")
            return
        self._report_lost(segment, f"not stored before shutdown ({self.fault})")


