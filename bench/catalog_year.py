"""A year of a large city's evidence catalog, written straight into a migrated database (for bench_catalog.py).

Bulk SQL, not the ORM: ``executemany`` on SQLite, ``COPY`` on PostgreSQL, with the ids assigned here so the
rows link without look-ups. One seed, so SQLite and PostgreSQL get the same catalog.

What a year looks like, as of ``now``: incidents spread over the year (more by day than at night, busier
sites busier), 10 s segments (the device's default) with the 30 s pre-event window in the first three,
holds on about 1 % (a third of them lifted later by a four-eyes decision), early deletions decided by two
people on about 0.2 %, and every incident whose rule expired before ``now`` deleted by the 15-minute timer
with its tombstone (the segment rows stay, as the product keeps them). About three accesses per incident
(page, playback, export, by the officer, reviewers and the data-protection officer), many more on held ones.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from backoffice.catalog.profiles import expiry, profile

SEGMENT_S = 10
PRE_EVENT_SEGMENTS = 3
FPS = 30
TIMER = timedelta(minutes=15)
PURPOSES = ("Anzeige wegen Beleidigung", "Bußgeldverfahren", "Beschwerde eines Bürgers",
            "Auskunftsersuchen Art. 15 DSGVO", "Strafverfahren, Anfrage der Staatsanwaltschaft")
HOLD_REASONS = ("Strafanzeige gestellt", "Widerspruch gegen Bußgeldbescheid", "Anfrage der Polizei")
RELEASE_REASONS = ("Verfahren eingestellt", "Urteil rechtskräftig")
EARLY_REASONS = ("Aufnahme versehentlich ausgelöst", "keine Maßnahme, versehentliche Aufnahme")
#: Activity by hour of day (UTC, roughly the city's day and evening).
HOURS = [1, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 9, 9, 9, 9, 9, 9, 10, 10, 9, 7, 5, 3, 2]


@dataclass(frozen=True)
class Scale:
    """How big the catalog is; :func:`scale_for` derives the fleet from the number of incidents."""

    incidents: int
    sites: int
    devices: int
    officers: int
    reviewers: int
    supervisors: int
    segments_per_incident: int = 10
    accesses_per_incident: float = 3.0
    hold_share: float = 0.01
    lifted_share: float = 0.3
    early_deletion_share: float = 0.002


def scale_for(incidents: int) -> Scale:
    """A large city at 1 M incidents a year: 20 sites, 2,000 devices, 1,500 officers; smaller ones in proportion."""
    devices = max(4, min(2000, incidents // 500))
    return Scale(incidents=incidents, sites=max(2, min(20, devices // 100)), devices=devices,
                 officers=max(3, devices * 3 // 4), reviewers=max(2, devices // 30), supervisors=max(2, devices // 100))


@dataclass
class Counts:
    """What was generated, for the report."""

    incidents: int = 0
    active: int = 0
    deleted: int = 0
    segments: int = 0
    holds: int = 0
    holds_on: int = 0
    decisions: int = 0
    tombstones: int = 0
    accesses: int = 0
    users: int = 0


class SqliteRows:
    """``executemany`` into the Django connection's sqlite3 database; datetimes as Django stores them."""

    def __init__(self, connection):
        self.db = connection.connection
        self.db.execute("PRAGMA foreign_keys = OFF")  # the ids are right by construction
        self.db.execute("PRAGMA cache_size = -2000000")  # 2 GB while loading; the product's connections keep the default
        self.db.execute("PRAGMA synchronous = OFF")

    @staticmethod
    def when(value: datetime | None):
        return None if value is None else str(value)  # naive UTC 'YYYY-MM-DD HH:MM:SS', Django's own format

    def put(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not self.db.in_transaction:  # Django keeps the connection in autocommit: one transaction per batch
            self.db.execute("BEGIN")
        marks = ", ".join("?" * len(columns))
        self.db.executemany(f'INSERT INTO {table} ({", ".join(columns)}) VALUES ({marks})', rows)

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.commit()
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA synchronous = FULL")


class PostgresRows:
    """``COPY ... FROM STDIN`` on the Django connection's psycopg connection."""

    def __init__(self, connection):
        self.db = connection.connection
        with self.db.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute("SET session_replication_role = replica")  # no FK triggers: the ids are right by construction
            cur.execute("SET synchronous_commit = off")

    @staticmethod
    def when(value: datetime | None):
        return value  # naive UTC, read in the session's UTC

    def put(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        with self.db.cursor() as cur, cur.copy(f'COPY {table} ({", ".join(columns)}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.commit()
        with self.db.cursor() as cur:
            cur.execute("SET session_replication_role = DEFAULT")
            for table in ("catalog_site", "catalog_device", "catalog_incident", "catalog_segment", "catalog_hold",
                          "catalog_decision", "catalog_tombstone", "catalog_access"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"GREATEST((SELECT max(id) FROM {table}), 1))")
        self.db.commit()


INCIDENT = ("id", "site_id", "device_id", "incident_id", "officer", "start", '"end"', "pre_event_frames",
            "frame_count", "store_path", "state", "expires_at")
SEGMENT = ("id", "incident_id", "stem", "seq", "segment_index", "final", "end_marker", "start", '"end"',
           "frame_count", "pre_event_frames", "ciphertext_sha256", "ciphertext_bytes", "manifest_sha256",
           "verification")
HOLD = ("id", "incident_id", "case_reference", "reason", "placed_by_id", "placed_at", "lifted_by_id", "lifted_at")
DECISION = ("id", "kind", "incident_id", "hold_id", "reason", "state", "proposed_by_id", "proposed_at",
            "approved_by_id", "approved_at")
TOMBSTONE = ("id", "incident_id", "rule", "decided_by", "segments", "created_at", "completed_at")
ACCESS = ("id", "user_id", "incident_id", "kind", "purpose", "at", "via")


def rows_for(connection):
    return PostgresRows(connection) if connection.vendor == "postgresql" else SqliteRows(connection)


def generate(connection, scale: Scale, now: datetime, *, seed: int = 15, chunk: int = 5000,
             progress=lambda text: None) -> Counts:
    """Fill the (migrated, empty) catalog behind Django's ``connection`` with a year ending at ``now`` (UTC)."""
    from django.contrib.auth.models import Group, User

    from backoffice.catalog.models import Device, Site

    rng = random.Random(seed)
    counts = Counts()
    out = rows_for(connection)
    naive_now = now.astimezone(timezone.utc).replace(tzinfo=None)

    # The people: officers (bound to a site), reviewers, supervisors, data-protection officers, admins.
    names = ([f"officer-{i:04d}" for i in range(scale.officers)] + [f"reviewer-{i:03d}" for i in range(scale.reviewers)]
             + [f"supervisor-{i:03d}" for i in range(scale.supervisors)] + ["dpo-1", "dpo-2", "admin-1"])
    User.objects.bulk_create([User(username=n, password="!") for n in names], batch_size=500)
    uid = dict(User.objects.values_list("username", "id"))
    name_of = {v: k for k, v in uid.items()}
    groups = dict(Group.objects.values_list("name", "id"))
    role_of = {"officer": "officer", "reviewer": "reviewer", "supervisor": "supervisor", "dpo": "data-protection",
               "admin": "admin"}
    out.put("auth_user_groups", ("user_id", "group_id"),
            [(uid[n], groups[role_of[n.split("-")[0]]]) for n in names])
    out.commit()
    counts.users = len(names)
    reviewers = [uid[n] for n in names if n.startswith("reviewer-")]
    supervisors = [uid[n] for n in names if n.startswith("supervisor-")]
    dpos = [uid["dpo-1"], uid["dpo-2"]]

    # Sites (all NRW: one city; two with an admin's own period) and their devices and officers.
    sites = Site.objects.bulk_create([Site(code=f"bezirk-{i + 1:02d}", profile="NW",
                                           period_override="28d" if i in (3, 11) else "")
                                      for i in range(scale.sites)])
    site_period = {s.pk: (s.period(), s.shift_hours, s.rule()) for s in sites}
    devices = Device.objects.bulk_create([Device(device_id=f"kod-{i + 1:04d}", site=sites[i % scale.sites])
                                          for i in range(scale.devices)])
    by_site = {s.pk: [d for d in devices if d.site_id == s.pk] for s in sites}
    officers_by_site = {s.pk: [n for k, n in enumerate(names[:scale.officers]) if k % scale.sites == i]
                        for i, s in enumerate(sites)}
    site_weight = [1 / (rank + 1) ** 0.6 for rank in range(scale.sites)]  # a few busy districts, many quiet ones
    seq_of = {d.pk: 0 for d in devices}
    out.commit()

    # When each incident starts: by day over the year, by hour after HOURS; sorted, so ids follow time.
    year = (naive_now - timedelta(days=365)).replace(hour=0, minute=0, second=0, microsecond=0)
    starts = sorted(year
                    + timedelta(days=rng.randrange(365), hours=rng.choices(range(24), HOURS)[0],
                                seconds=rng.randrange(3600)) for _ in range(scale.incidents))
    hold_id = decision_id = tombstone_id = access_id = segment_id = 0
    buf: dict[str, list] = {k: [] for k in ("incident", "segment", "hold", "decision", "tombstone", "access")}
    when = out.when
    hexes = rng.randbytes

    def flush():
        for table, columns, key in (("catalog_incident", INCIDENT, "incident"), ("catalog_segment", SEGMENT, "segment"),
                                    ("catalog_hold", HOLD, "hold"), ("catalog_decision", DECISION, "decision"),
                                    ("catalog_tombstone", TOMBSTONE, "tombstone"), ("catalog_access", ACCESS, "access")):
            if buf[key]:
                out.put(table, columns, buf[key])
                buf[key].clear()
        out.commit()

    longest = {s.pk: 0 for s in sites}  # each site's longest incident, as the receiver keeps it (Site.cover)
    for number, start in enumerate(starts, 1):
        site = sites[rng.choices(range(scale.sites), site_weight)[0]]
        device = rng.choice(by_site[site.pk])
        officer = rng.choice(officers_by_site[site.pk])
        n_seg = rng.randint(1, 2 * scale.segments_per_incident - 1)
        end = start + timedelta(seconds=n_seg * SEGMENT_S)
        longest[site.pk] = max(longest[site.pk], n_seg * SEGMENT_S)
        period, shift_hours, rule = site_period[site.pk]
        expires = expiry(end, period, shift_hours)
        incident_id = start.strftime("%Y%m%dT%H%M%SZ") + f"-{number:06x}"[-7:]
        gone_at = None  # when the catalog deleted it (None: still active at ``now``)
        decided_by = ["retention timer"]

        # A hold (about 1 %), placed while the incident still existed; a third lifted later by two people.
        hold_on = lifted_at = None
        if rng.random() < scale.hold_share:
            placed = end + timedelta(hours=rng.uniform(1, 24 * 13))
            if placed < naive_now:
                hold_id += 1
                placer = rng.choice(reviewers)
                lifted_by = None
                if rng.random() < scale.lifted_share:
                    lifted_at = placed + timedelta(days=rng.uniform(20, 120))
                    if lifted_at < naive_now:
                        lifted_by = rng.choice(supervisors)
                        decision_id += 1
                        proposed = lifted_at - timedelta(hours=rng.uniform(1, 48))
                        buf["decision"].append((decision_id, "hold_release", number, hold_id,
                                                rng.choice(RELEASE_REASONS), "approved", rng.choice(reviewers),
                                                when(proposed), lifted_by, when(lifted_at)))
                    else:
                        lifted_at = None
                buf["hold"].append((hold_id, number, f"Az. {rng.randrange(100, 999)}/{start.year % 100}",
                                    rng.choice(HOLD_REASONS), placer, when(placed), lifted_by, when(lifted_at)))
                hold_on = lifted_at is None
                counts.holds += 1
                counts.holds_on += hold_on
        # An early deletion (about 0.2 %): proposed by the officer, approved by a supervisor.
        if not hold_on and rng.random() < scale.early_deletion_share:
            proposed = end + timedelta(hours=rng.uniform(1, 72))
            approved = proposed + timedelta(hours=rng.uniform(0.5, 48))
            if approved < naive_now:
                decision_id += 1
                reason = rng.choice(EARLY_REASONS)
                approver = rng.choice(supervisors)
                buf["decision"].append((decision_id, "early_deletion", number, None, reason, "approved",
                                        uid[officer], when(proposed), approver, when(approved)))
                gone_at = approved
                rule = f"early deletion, decision {decision_id}: {reason}"
                decided_by = [officer, name_of[approver]]
        if gone_at is None and not hold_on:
            due = max(expires, lifted_at or expires)
            tick = due + (TIMER - timedelta(seconds=due.minute % 15 * 60 + due.second)) % TIMER
            if tick <= naive_now:
                gone_at = tick

        # Its segments (10 s each; the first three carry the pre-event window).
        segs, times = [], []
        for k in range(n_seg):
            seq_of[device.pk] += 1
            segment_id += 1
            s0 = start + timedelta(seconds=k * SEGMENT_S)
            s1 = s0 + timedelta(seconds=SEGMENT_S)
            digest = hexes(64).hex()
            pre = FPS * SEGMENT_S if k < PRE_EVENT_SEGMENTS else 0
            segs.append((segment_id, number, f"{device.device_id}-{seq_of[device.pk]:010d}", seq_of[device.pk], k,
                         k == n_seg - 1, False, when(s0), when(s1), FPS * SEGMENT_S,
                         pre, digest[:64], rng.randrange(10_000_000, 15_000_000), digest[64:], "verified"))
            times.append((s0, s1))
        buf["segment"] += segs
        counts.segments += n_seg
        pre_frames = min(n_seg, PRE_EVENT_SEGMENTS) * FPS * SEGMENT_S
        state = "active" if gone_at is None else "deleted"
        buf["incident"].append((number, site.pk, device.pk, incident_id, officer, when(start), when(end), pre_frames,
                                n_seg * FPS * SEGMENT_S, f"{site.code}/{device.device_id}/{incident_id}", state,
                                when(expires)))
        if gone_at is not None:
            tombstone_id += 1
            listed = [{"stem": s[2], "seq": s[3], "ciphertext_sha256": s[11], "ciphertext_bytes": s[12],
                       "manifest_sha256": s[13], "start": f"{t0.isoformat()}+00:00", "end": f"{t1.isoformat()}+00:00"}
                      for s, (t0, t1) in zip(segs, times)]
            buf["tombstone"].append((tombstone_id, number, rule, json.dumps(decided_by), json.dumps(listed),
                                     when(gone_at), when(gone_at + timedelta(seconds=rng.uniform(0.05, 2)))))
            counts.deleted += 1
        else:
            counts.active += 1

        # Who looked at it, while it existed (and its record afterwards).
        n_access = min(int(rng.expovariate(1 / scale.accesses_per_incident) + 0.5), 40)
        if hold_on is not None:
            n_access += rng.randint(10, 80)
        last = min(gone_at or naive_now, naive_now)
        for _ in range(n_access):
            at = end + (last - end) * rng.random() ** 3  # most soon after the incident
            r = rng.random()
            if r < 0.45:
                who, kind, purpose = uid[officer], "page", ""
            elif r < 0.6:
                who, kind, purpose = uid[officer], "playback", rng.choice(PURPOSES)
            elif r < 0.85:
                who, kind, purpose = rng.choice(reviewers), rng.choice(("page", "playback")), rng.choice(PURPOSES)
            elif r < 0.95:
                who, kind, purpose = rng.choice(reviewers), "export", rng.choice(PURPOSES)
            else:
                who, kind, purpose = rng.choice(dpos), "page", ""
            if kind == "page":
                purpose = ""
            access_id += 1
            buf["access"].append((access_id, who, number, kind, purpose, when(at),
                                  f"web 10.20.{rng.randrange(256)}.{rng.randrange(1, 255)}"))
        counts.accesses += n_access

        if number % chunk == 0:
            flush()
            if number % (chunk * 20) == 0:
                progress(f"{number:,} incidents")
    flush()
    out.close()
    for pk, seconds in longest.items():
        Site.objects.filter(pk=pk).update(longest_incident_s=seconds)
    counts.incidents = scale.incidents
    counts.decisions, counts.tombstones = decision_id, tombstone_id
    return counts
