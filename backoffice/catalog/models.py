"""The catalog: what the store holds (devices, incidents, segments) and what happens to it (holds, four-eyes
decisions, tombstones). The rules live in the methods here, so no caller can skip them; every step is
written to the signed office audit log (:mod:`.office`).
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.db import models, transaction

from base.errors import BodycamError
from evidence.tombstone import sign_tombstone

from . import office as events
from .profiles import check_period, expiry, profile
from .storefiles import remove_incident_files
from .roles import ADMIN, DATA_PROTECTION, OFFICER, REVIEWER, SUPERVISOR, has_role

logger = logging.getLogger(__name__)


class RuleError(BodycamError):
    """A lifecycle step was refused by a rule (self-approval, a missing role, a held incident ...).

    ``str()`` is the English reason the audit log and the refusal rows keep; ``code`` names the rule and
    ``params`` the values the reason names, so the review app can say it in its reader's language
    (backoffice/web/refusals.py)."""

    def __init__(self, reason: str, code: str = "", **params):
        super().__init__(reason)
        self.code, self.params = code, params


class Site(models.Model):
    code = models.CharField(max_length=64, unique=True)
    #: A state profile of base/legal_profiles.toml by its code (the default rule).
    profile = models.CharField(max_length=8, default="NW")
    #: An admin's own period for this site ('<n>d', '<n>mo', 'shift'); empty: the profile's.
    period_override = models.CharField(max_length=16, blank=True, default="")
    shift_hours = models.PositiveSmallIntegerField(default=12)
    #: The longest incident at this site so far, in whole seconds (kept by the receiver's recording,
    #: :func:`.segment_rows.cover`):
    #: a time-window report looks for incidents overlapping its window among those that start at most this
    #: long before it, an index range however many years the catalog holds.
    longest_incident_s = models.PositiveIntegerField(default=0)

    def period(self) -> str:
        return self.period_override or profile(self.profile).period

    def rule(self) -> str:
        """The rule a deletion names: the period and where it comes from."""
        if self.period_override:
            return f"site {self.code}: {self.period_override} set by an admin"
        return f"site {self.code}: {profile(self.profile).describe()}"

    def set_policy(self, office, *, by, profile_code: str | None = None, period: str | None = None,
                   shift_hours: int | None = None) -> int:
        """An admin changes the site's rule; the expiry of its active incidents follows. Returns how many."""
        if not has_role(by, ADMIN):
            raise RuleError(f"{by.username} may not change a site's retention (needs the admin role)",
                            "needs_role", user=by.username, roles=(ADMIN,))
        if profile_code is not None:
            profile(profile_code)  # refuses an unknown one
            self.profile = profile_code
        if period is not None:
            self.period_override = check_period(period) if period else ""
        if shift_hours is not None:
            if not 1 <= shift_hours <= 24:
                raise RuleError("a shift lasts 1 to 24 hours", "shift_hours")
            self.shift_hours = shift_hours
        with transaction.atomic():
            self.save()
            active = list(self.incident_set.filter(state=Incident.ACTIVE))
            for incident in active:
                incident.site = self
                incident.recompute_expiry()
                incident.save(update_fields=["expires_at"])
        office.record(events.SITE_POLICY_CHANGED, site=self.code, rule=self.rule(), shift_hours=self.shift_hours,
                      incidents=len(active), by=by.username)
        return len(active)

    def __str__(self):
        return self.code


class Device(models.Model):
    device_id = models.CharField(max_length=64, unique=True)
    site = models.ForeignKey(Site, on_delete=models.PROTECT)

    def __str__(self):
        return self.device_id


class Incident(models.Model):
    ACTIVE, DELETING, DELETED = "active", "deleting", "deleted"

    site = models.ForeignKey(Site, on_delete=models.PROTECT)
    device = models.ForeignKey(Device, on_delete=models.PROTECT)
    incident_id = models.CharField(max_length=256)
    officer = models.CharField(max_length=150, blank=True, default="")
    start = models.DateTimeField()
    end = models.DateTimeField()
    pre_event_frames = models.PositiveIntegerField(default=0)
    frame_count = models.PositiveIntegerField(default=0)
    #: Directory of its files, relative to the store.
    store_path = models.CharField(max_length=512)
    state = models.CharField(max_length=8, default=ACTIVE,
                             choices=[(ACTIVE, ACTIVE), (DELETING, DELETING), (DELETED, DELETED)])
    #: When the site's rule deletes it (recomputed when segments arrive); a hold overrides it. Indexed with
    #: ``state`` (every query asks for active ones; see Meta).
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "incident_id"], name="one_incident_per_device_id")]
        indexes = [models.Index(fields=["site", "start"]),
                   # the retention run and the expiring report: active ones by expiry, without walking the
                   # year's deleted ones (bench/bench_catalog.py)
                   models.Index(fields=["state", "expires_at"], name="incident_state_expiry"),
                   # the incident list of one officer or one device, by start (queries.incident_list)
                   models.Index(fields=["officer", "start"], name="incident_officer_start"),
                   models.Index(fields=["device", "start"], name="incident_device_start")]

    def __str__(self):
        return f"{self.device.device_id}/{self.incident_id}"

    def recompute_expiry(self) -> None:
        self.expires_at = expiry(self.end, self.site.period(), self.site.shift_hours)

    def active_holds(self):
        return self.holds.filter(lifted_at__isnull=True)

    def place_hold(self, office, *, by, case_reference: str, reason: str) -> Hold:
        """"Needed as evidence": while a hold is on, no rule deletes the incident."""
        if not (case_reference.strip() and reason.strip()):
            raise RuleError("a hold needs a case reference and a reason", "hold_needs_reason")
        if self.state != self.ACTIVE:
            raise RuleError(f"incident {self} is {self.state}; nothing left to hold", "not_active",
                            incident=str(self), state=self.state)
        _require_role(by, (REVIEWER, SUPERVISOR), self)
        hold = Hold.objects.create(incident=self, case_reference=case_reference, reason=reason, placed_by=by,
                                   placed_at=office.now())
        office.record(events.HOLD_PLACED, hold=hold.pk, incident=str(self), case_reference=case_reference,
                      reason=reason, by=by.username)
        return hold

    def propose_deletion(self, office, *, by, reason: str) -> Decision:
        """Early deletion (before the rule's expiry): one person proposes, a supervisor approves."""
        if self.active_holds().exists():
            raise RuleError(f"incident {self} is held; release the hold first", "held", incident=str(self))
        return Decision.propose(office, Decision.EARLY_DELETION, incident=self, by=by, reason=reason)

    def delete_with_tombstone(self, office, *, rule: str, by: list[str]) -> Tombstone:
        """Delete this incident's files, leaving its tombstone (steps in :mod:`.retention`). Refused while held."""
        tombstones, refused = begin_deletions(office, [self], rule=lambda incident: rule, by=by)
        if refused:
            raise refused[0][1]
        finish_deletions(office, tombstones)
        self.refresh_from_db()
        return tombstones[0]


class Segment(models.Model):
    VERIFIED, UNVERIFIED, FAILED = "verified", "unverified", "failed"

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="segments")
    stem = models.CharField(max_length=96, unique=True)
    seq = models.PositiveBigIntegerField()
    segment_index = models.PositiveIntegerField()
    final = models.BooleanField(default=False)
    end_marker = models.BooleanField(default=False)
    start = models.DateTimeField()
    end = models.DateTimeField()
    frame_count = models.PositiveIntegerField()
    pre_event_frames = models.PositiveIntegerField()
    ciphertext_sha256 = models.CharField(max_length=64)
    ciphertext_bytes = models.PositiveBigIntegerField()
    manifest_sha256 = models.CharField(max_length=64)
    verification = models.CharField(max_length=10, choices=[(VERIFIED, VERIFIED), (UNVERIFIED, UNVERIFIED),
                                                            (FAILED, FAILED)])

    def tombstone_entry(self) -> dict:
        """What a tombstone keeps of this segment once its files are gone (:mod:`evidence.tombstone`)."""
        return {"stem": self.stem, "seq": self.seq, "ciphertext_sha256": self.ciphertext_sha256,
                "ciphertext_bytes": self.ciphertext_bytes, "manifest_sha256": self.manifest_sha256,
                "start": self.start.isoformat(), "end": self.end.isoformat()}


class Decision(models.Model):
    """A four-eyes decision: proposed by one person, approved by another who has the supervisor role."""

    EARLY_DELETION, HOLD_RELEASE = "early_deletion", "hold_release"
    PROPOSED, APPROVED = "proposed", "approved"

    kind = models.CharField(max_length=16, choices=[(EARLY_DELETION, EARLY_DELETION), (HOLD_RELEASE, HOLD_RELEASE)])
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="decisions")
    hold = models.ForeignKey("Hold", null=True, blank=True, on_delete=models.PROTECT, related_name="decisions")
    reason = models.TextField()
    state = models.CharField(max_length=10, default=PROPOSED, choices=[(PROPOSED, PROPOSED), (APPROVED, APPROVED)])
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField()
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)

    @classmethod
    def propose(cls, office, kind: str, *, incident: Incident, by, reason: str, hold: Hold | None = None) -> Decision:
        if not reason.strip():
            raise RuleError("a proposal needs a reason", "needs_reason")
        if incident.state != Incident.ACTIVE:
            raise RuleError(f"incident {incident} is {incident.state}", "not_active", incident=str(incident),
                            state=incident.state)
        _require_role(by, (OFFICER, REVIEWER, SUPERVISOR), incident)
        decision = cls.objects.create(kind=kind, incident=incident, hold=hold, reason=reason, proposed_by=by,
                                      proposed_at=office.now())
        office.record(events.DECISION_PROPOSED, decision=decision.pk, kind=kind, incident=str(incident),
                      hold=hold.pk if hold else None, reason=reason, by=by.username)
        return decision

    def approve(self, office, *, by) -> None:
        """Carry the decision out. Refused (and the refusal recorded) for self-approval or without the role."""
        refusal = None
        if self.state != self.PROPOSED:
            refusal = RuleError(f"decision {self.pk} is already {self.state}", "decided", decision=self.pk,
                                state=self.state)
        elif by.pk == self.proposed_by_id:
            refusal = RuleError("self-approval: the approver must be another person than the proposer",
                                "self_approval")
        elif not has_role(by, SUPERVISOR):
            refusal = RuleError(f"{by.username} does not have the supervisor role", "needs_role",
                                user=by.username, roles=(SUPERVISOR,))
        else:
            self.incident.refresh_from_db()  # as it is now, not as it was when proposed
            if self.incident.state != Incident.ACTIVE:
                refusal = RuleError(f"incident {self.incident} is {self.incident.state}", "not_active",
                                    incident=str(self.incident), state=self.incident.state)
            elif self.kind == self.EARLY_DELETION and self.incident.active_holds().exists():
                refusal = RuleError(f"incident {self.incident} is held meanwhile; release the hold first", "held",
                                    incident=str(self.incident))
            elif self.kind == self.HOLD_RELEASE and Hold.objects.filter(pk=self.hold_id, lifted_at__isnull=False).exists():
                refusal = RuleError(f"hold {self.hold_id} is already lifted", "hold_lifted", hold=self.hold_id)
        if refusal:
            office.record(events.DECISION_REFUSED, decision=self.pk, by=by.username, reason=str(refusal))
            raise RuleError(f"approval refused: {refusal}", refusal.code, **refusal.params)
        now = office.now()
        with transaction.atomic():
            # two approvers at once: only the first finds it still proposed
            if not Decision.objects.select_for_update().filter(pk=self.pk, state=self.PROPOSED).exists():
                raise RuleError(f"approval refused: decision {self.pk} was decided meanwhile", "decided",
                                decision=self.pk, state="")
            self.state, self.approved_by, self.approved_at = self.APPROVED, by, now
            self.save()
            if self.kind == self.HOLD_RELEASE:
                Hold.objects.filter(pk=self.hold_id).update(lifted_at=now, lifted_by=by)
        office.record(events.DECISION_APPROVED, decision=self.pk, kind=self.kind, incident=str(self.incident),
                      proposed_by=self.proposed_by.username, approved_by=by.username)
        if self.kind == self.HOLD_RELEASE:
            office.record(events.HOLD_LIFTED, hold=self.hold_id, incident=str(self.incident), decision=self.pk,
                          proposed_by=self.proposed_by.username, approved_by=by.username)
        else:
            self.incident.delete_with_tombstone(office, rule=f"early deletion, decision {self.pk}: {self.reason}",
                                                by=[self.proposed_by.username, by.username])


class Hold(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="holds")
    case_reference = models.CharField(max_length=128)
    reason = models.TextField()
    placed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    placed_at = models.DateTimeField()
    lifted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    lifted_at = models.DateTimeField(null=True, blank=True)

    def propose_release(self, office, *, by, reason: str) -> Decision:
        """Lifting a hold needs a second person: this proposes it; a supervisor's approval lifts it."""
        if self.lifted_at is not None:
            raise RuleError(f"hold {self.pk} is already lifted", "hold_lifted", hold=self.pk)
        return Decision.propose(office, Decision.HOLD_RELEASE, incident=self.incident, hold=self, by=by,
                                reason=reason)


class Tombstone(models.Model):
    """What a deletion removed (hashes, sizes, times), under which rule, decided by whom."""

    incident = models.OneToOneField(Incident, on_delete=models.PROTECT, related_name="tombstone")
    rule = models.TextField()
    decided_by = models.JSONField()
    segments = models.JSONField()
    created_at = models.DateTimeField()
    #: None while the deletion is in progress: the retention run finishes those first.
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # a year leaves a million completed ones: the retention run's "not completed" and the deletion
        # report's range are index look-ups (an index, not db_index: SQLite would copy the table for that)
        indexes = [models.Index(fields=["completed_at"], name="tombstone_completed")]

    def finish(self, office) -> None:
        """Steps 2-5 of a deletion (see :mod:`.retention`); repeating them after a crash is harmless."""
        finish_deletions(office, [self])

    def as_dict(self) -> dict:
        inc = self.incident
        return {"tombstone_id": self.pk, "site": inc.site.code, "device_id": inc.device.device_id,
                "incident_id": inc.incident_id, "start": inc.start.isoformat(), "end": inc.end.isoformat(),
                "rule": self.rule, "decided_by": self.decided_by, "deleted_at": self.created_at.isoformat(),
                "segments": self.segments}


def begin_deletions(office, incidents: list[Incident], *, rule: Callable[[Incident], str],
                    by: list[str]) -> tuple[list[Tombstone], list[tuple[Incident, RuleError]]]:
    """Step 1 of deleting each of ``incidents`` (see :mod:`.retention`), in one transaction: its tombstone
    (what, under which rule, by whom) and the state ``deleting``. Returns the tombstones, and the incidents
    left as they are with the reason: no longer active, or held (both can change after a caller chose them).
    """
    pks = [incident.pk for incident in incidents]
    refused, tombstones = [], []
    with transaction.atomic():
        locked = {i.pk: i for i in Incident.objects.select_for_update(of=("self",)).select_related("site", "device")
                  .filter(pk__in=pks).order_by("pk")}
        held = set(Hold.objects.filter(incident__in=pks, lifted_at__isnull=True).values_list("incident", flat=True))
        segments: dict[int, list[dict]] = {pk: [] for pk in pks}
        for s in Segment.objects.filter(incident__in=pks).order_by("incident", "seq"):
            segments[s.incident_id].append(s.tombstone_entry())
        now = office.now()
        for pk in pks:
            incident = locked[pk]
            if incident.state != Incident.ACTIVE:
                refused.append((incident, RuleError(f"incident {incident} is {incident.state}", "not_active",
                                                    incident=str(incident), state=incident.state)))
            elif pk in held:
                refused.append((incident, RuleError(f"incident {incident} is held; it is not deleted", "held",
                                                    incident=str(incident))))
            else:
                tombstones.append(Tombstone(incident=incident, rule=rule(incident), decided_by=by,
                                            segments=segments[pk], created_at=now))
        Tombstone.objects.bulk_create(tombstones)
        Incident.objects.filter(pk__in=[t.incident_id for t in tombstones]).update(state=Incident.DELETING)
    for tombstone in tombstones:
        tombstone.incident.state = Incident.DELETING
    return tombstones, refused


def finish_deletions(office, tombstones: list[Tombstone], files: Executor | None = None) -> None:
    """Steps 2-5 of each deletion (see :mod:`.retention`); repeating them after a crash is harmless.

    Each incident's steps keep their order; the incidents share one fsync of the audit log for step 2 and
    one for step 5, and one transaction at the end; with ``files`` (an executor) their files are removed at
    once: each removal mostly waits for the disk (fsyncs, unlinks), and those waits overlap
    (docs/BENCHMARKS.md, "Catalog at a large city's scale").
    """
    office.record_many([(events.DELETION_STARTED, dict(tombstone=t.pk, incident=str(t.incident), rule=t.rule,
                                                       by=t.decided_by, segments=t.segments)) for t in tombstones])
    directories = [Path(office.store_dir) / t.incident.store_path for t in tombstones]
    signed = [sign_tombstone(office.signer, t.as_dict()) for t in tombstones]
    removed = list((files.map if files else map)(remove_incident_files, directories, signed,
                                                 [t.segments for t in tombstones]))
    office.record_many([(events.INCIDENT_DELETED, dict(tombstone=t.pk, incident=str(t.incident), rule=t.rule,
                                                       files_removed=count)) for t, count in zip(tombstones, removed)])
    with transaction.atomic():
        now = office.now()
        # A late segment may have joined a tombstone meanwhile (join_deletion): that one stays "deleting" and
        # the next run removes it too. A completed tombstone keeps the time its deletion first completed.
        current = dict(Tombstone.objects.select_for_update().filter(pk__in=[t.pk for t in tombstones])
                       .values_list("pk", "segments"))
        done = [(t, count) for t, count in zip(tombstones, removed) if len(current[t.pk]) == len(t.segments)]
        Tombstone.objects.filter(pk__in=[t.pk for t, _ in done], completed_at__isnull=True).update(completed_at=now)
        Incident.objects.filter(pk__in=[t.incident_id for t, _ in done]).update(state=Incident.DELETED)
    for t, count in done:
        t.completed_at, t.incident.state = t.completed_at or now, Incident.DELETED
        logger.info("incident %s deleted under %r (tombstone %d, %d files)", t.incident, t.rule, t.pk, count)


def join_deletion(incident: Incident, segment: Segment) -> None:
    """A segment stored after its incident was deleted (its device was offline past the retention period)
    joins the incident's tombstone, and the incident is ``deleting`` again: the next retention run removes its
    files under the same rule and decision and signs the tombstone anew (:func:`finish_deletions`). Call it
    in the transaction that catalogs the segment, with the incident locked."""
    tombstone = Tombstone.objects.select_for_update().get(incident=incident)
    if all(entry["stem"] != segment.stem for entry in tombstone.segments):
        tombstone.segments = [*tombstone.segments, segment.tombstone_entry()]
        tombstone.save(update_fields=["segments"])
    incident.state = Incident.DELETING


def _require_role(user, roles: tuple[str, ...], incident: Incident) -> None:
    """Officers act on their own recordings only; the other roles on any."""
    for role in roles:
        if has_role(user, role) and (role != OFFICER or incident.officer == user.username):
            return
    raise RuleError(f"{user.username} may not do this (needs one of: {', '.join(roles)})", "needs_role",
                    user=user.username, roles=roles)


class Access(models.Model):
    """One person's access to one incident: who, when, how, and for which stated purpose.

    The data-protection officer's access report and a filmed person's Art. 15 request read these rows;
    each is also a line in the signed office audit log, so the table can be checked against the chain.
    Opening an incident's page is recorded (``page``); watching and exporting need a purpose and a role
    that may see video (the data-protection officer may not).
    """

    PAGE, PLAYBACK, EXPORT = "page", "playback", "export"
    KINDS = (PAGE, PLAYBACK, EXPORT)
    NEEDS_PURPOSE = (PLAYBACK, EXPORT)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="accesses")
    kind = models.CharField(max_length=8, choices=[(k, k) for k in KINDS])
    purpose = models.TextField(blank=True, default="")
    at = models.DateTimeField()
    #: Where it came from: "web" (with the client's address) or "cli" (with the OS account).
    via = models.CharField(max_length=64, default="web")

    class Meta:
        indexes = [models.Index(fields=["incident", "at"]), models.Index(fields=["at"]),
                   models.Index(fields=["user", "at"])]

    @classmethod
    def open(cls, office, *, user, incident: Incident, kind: str, purpose: str = "", via: str = "web") -> Access:
        """Check and record an access; refused (and the refusal recorded) when a rule forbids it."""
        refusal = None
        if kind not in cls.KINDS:
            refusal = RuleError(f"unknown access kind {kind!r}", "access_kind", kind=kind)
        elif kind in cls.NEEDS_PURPOSE and not purpose.strip():
            refusal = RuleError(f"{kind} needs a stated purpose", "needs_purpose", kind=kind)
        elif kind in cls.NEEDS_PURPOSE and incident.state != Incident.ACTIVE:
            refusal = RuleError(f"incident {incident} is {incident.state}; its video is gone", "video_gone",
                                incident=str(incident), state=incident.state)
        elif not may_see(user, incident, video=kind in cls.NEEDS_PURPOSE):
            refusal = RuleError(f"{user.username} may not {'watch or export' if kind in cls.NEEDS_PURPOSE else 'open'} "
                                f"{incident}", "may_not_see", user=user.username, incident=str(incident), kind=kind)
        if refusal:
            AccessRefusal.objects.create(user=user, incident=incident, kind=kind[:16], purpose=purpose.strip(),
                                         at=office.now(), via=via, reason=str(refusal))
            office.record(events.ACCESS_REFUSED, incident=str(incident), kind=kind, by=user.username, via=via,
                          reason=str(refusal))
            raise refusal
        access = cls.objects.create(user=user, incident=incident, kind=kind, purpose=purpose.strip(),
                                    at=office.now(), via=via)
        office.record(events.ACCESS, access=access.pk, incident=str(incident), kind=kind, purpose=access.purpose,
                      by=user.username, via=via)
        return access


class AccessRefusal(models.Model):
    """An access :meth:`Access.open` refused (no role, no purpose, video already deleted), with the reason.

    Also a line in the office audit log; kept as a row so the data-protection officer's access report lists
    the attempts beside the accesses without reading the whole log. Written in the caller's transaction:
    a caller that rolls back on the refusal loses the row, never the audit line.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="access_refusals")
    #: What was asked for (an unknown kind too, cut to 16 characters).
    kind = models.CharField(max_length=16)
    purpose = models.TextField(blank=True, default="")
    at = models.DateTimeField()
    via = models.CharField(max_length=64, default="web")
    reason = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["incident", "at"])]


def may_see(user, incident: Incident, *, video: bool) -> bool:
    """The one rule for reading an incident: officers their own; reviewers and supervisors any; the
    data-protection officer and admins its record (metadata, logs), never its picture or sound."""
    if has_role(user, REVIEWER) or has_role(user, SUPERVISOR):
        return True
    if has_role(user, OFFICER) and incident.officer == user.username:
        return True
    if not video and (has_role(user, DATA_PROTECTION) or has_role(user, ADMIN)):
        return True
    return False


def visible_incidents(user, incidents):
    """``incidents`` (a QuerySet) narrowed to those :func:`may_see` lets ``user`` open as a record: the same
    rule, as a query, for lists."""
    if any(has_role(user, role) for role in (REVIEWER, SUPERVISOR, DATA_PROTECTION, ADMIN)):
        return incidents
    if has_role(user, OFFICER):
        return incidents.filter(officer=user.username)
    return incidents.none()
