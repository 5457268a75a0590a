"""The lifecycle rules on a real catalog: retention with time travel, holds, four-eyes decisions, tombstones."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from evidence.audit import verify_log
from evidence.verify import verify_paths
from evidence.keys import load_office_public_key
from evidence.tombstone import read_tombstone

from .conftest import seconds


def _events(world) -> list[tuple[str, dict]]:
    return [(d["event"], d["fields"]) for d in map(json.loads, world.log_path.read_text().splitlines())]


def _incident(name: str):
    from backoffice.catalog.models import Incident

    return Incident.objects.get(incident_id=name)


def _files(world, name: str) -> list[str]:
    return sorted(p.name for p in (world.store / "duisburg" / "kod-07" / name).iterdir())


def test_migrations_from_empty_match_the_models(db):
    from django.core.management import call_command

    call_command("makemigrations", "catalog", check=True, dry_run=True, verbosity=0)  # SystemExit(1) if not


def test_ingest_catalogs_the_store_once_and_checks_signatures(world, frames_30):
    sealed = world.record_incident("inc-1", frames_30)
    report = world.ingest()
    assert (report.added, report.known, report.problems) == (3, 0, [])
    assert (world.ingest().added, world.ingest().known) == (0, 3)
    inc = _incident("inc-1")
    assert inc.site.code == "duisburg" and inc.device.device_id == "kod-07"
    assert inc.segments.count() == 3 and {s.verification for s in inc.segments.all()} == {"verified"}
    assert inc.segments.get(seq=1).ciphertext_sha256 == json.loads(sealed[0].manifest)["ciphertext_sha256"]
    assert inc.expires_at == inc.end + timedelta(days=14)  # NRW, the default profile
    assert [e for e, _ in _events(world)].count("segment_cataloged") == 3


def test_a_bad_manifest_is_reported_and_changes_nothing(world, frames_30):
    world.record_incident("inc-1", frames_30)
    bad = world.store / "duisburg" / "kod-07" / "inc-1" / "kod-07-zz.manifest.json"
    bad.write_bytes(b"{not json")
    report = world.ingest()
    assert report.added == 3 and len(report.problems) == 1 and "kod-07-zz" in report.problems[0]


def test_nrw_incident_is_deleted_exactly_at_end_plus_14_days_leaving_a_tombstone(world, frames_30):
    from backoffice.catalog.retention import run_retention
    from backoffice.catalog.storefiles import TOMBSTONE_FILE

    sealed = world.record_incident("inc-1", frames_30)
    world.ingest()
    inc = _incident("inc-1")
    world.clock.now = inc.end + timedelta(days=14) - seconds(1)
    assert run_retention(world.office).deleted == []
    assert _incident("inc-1").state == "active" and len(_files(world, "inc-1")) == 6

    world.clock.now = inc.end + timedelta(days=14)
    assert run_retention(world.office).deleted == ["kod-07/inc-1"]
    inc = _incident("inc-1")
    assert inc.state == "deleted"
    assert _files(world, "inc-1") == [TOMBSTONE_FILE]
    tomb = inc.tombstone
    assert tomb.completed_at == world.clock.now and tomb.decided_by == ["retention timer"]
    assert "§ 15c PolG NRW" in tomb.rule
    assert [s["ciphertext_sha256"] for s in tomb.segments] == [json.loads(s.manifest)["ciphertext_sha256"]
                                                                for s in sealed]
    on_disk = read_tombstone((world.store / "duisburg" / "kod-07" / "inc-1" / TOMBSTONE_FILE).read_bytes(),
                             load_office_public_key(world.office_pub))
    assert on_disk.doc["rule"] == tomb.rule and on_disk.segments == tomb.segments
    assert run_retention(world.office).deleted == []  # idempotent
    names = [e for e, _ in _events(world)]
    assert names.index("deletion_started") < names.index("incident_deleted")


def test_a_held_incident_survives_and_expires_once_two_people_lift_the_hold(world, frames_30):
    from backoffice.catalog.retention import run_retention
    from backoffice.catalog.models import RuleError

    world.record_incident("inc-1", frames_30)
    world.ingest()
    reviewer, supervisor = world.user("rita", "reviewer"), world.user("sven", "supervisor")
    inc = _incident("inc-1")
    hold = inc.place_hold(world.office, by=reviewer, case_reference="OWi 123/25", reason="complaint filed")
    world.clock.now = inc.end + timedelta(days=30)
    report = run_retention(world.office)
    assert report.deleted == [] and report.held == ["kod-07/inc-1"] and _incident("inc-1").state == "active"

    decision = hold.propose_release(world.office, by=supervisor, reason="case closed")
    with pytest.raises(RuleError, match="self-approval"):
        decision.approve(world.office, by=supervisor)  # the proposer cannot be the second person
    assert run_retention(world.office).held == ["kod-07/inc-1"]
    other = world.user("sara", "supervisor")
    decision.approve(world.office, by=other)
    hold.refresh_from_db()
    assert hold.lifted_by == other and hold.lifted_at == world.clock.now
    assert run_retention(world.office).deleted == ["kod-07/inc-1"]
    assert _incident("inc-1").state == "deleted"


def test_early_deletion_needs_a_supervisor_other_than_the_proposer_and_the_log_holds_every_step(world, frames_30):
    from backoffice.catalog.models import RuleError

    world.record_incident("inc-1", frames_30)
    world.ingest()
    reviewer, supervisor = world.user("rita", "reviewer"), world.user("sven", "supervisor")
    decision = _incident("inc-1").propose_deletion(world.office, by=reviewer, reason="recorded by mistake")
    with pytest.raises(RuleError, match="self-approval"):
        decision.approve(world.office, by=reviewer)
    with pytest.raises(RuleError, match="supervisor role"):
        decision.approve(world.office, by=world.user("rolf", "reviewer"))
    assert _incident("inc-1").state == "active" and len(_files(world, "inc-1")) == 6

    decision.approve(world.office, by=supervisor)
    inc = _incident("inc-1")
    assert inc.state == "deleted" and inc.tombstone.decided_by == ["rita", "sven"]
    report = verify_paths([world.store], world.env.devices, office_key=load_office_public_key(world.office_pub))
    assert report.ok, report.lines()
    assert "approved by rita and sven" in report.deletions[0].message()
    assert "early deletion" in inc.tombstone.rule
    with pytest.raises(RuleError, match="already approved"):
        decision.approve(world.office, by=world.user("sara", "supervisor"))

    report = verify_log(world.log_path, load_office_public_key(world.office_pub).key)
    assert report.ok, report.summary()
    steps = [(e, f.get("by"), f.get("approved_by")) for e, f in _events(world)
             if e.startswith("decision") or e.startswith("deletion") or e == "incident_deleted"]
    assert steps == [("decision_proposed", "rita", None), ("decision_refused", "rita", None),
                     ("decision_refused", "rolf", None), ("decision_approved", None, "sven"),
                     ("deletion_started", ["rita", "sven"], None), ("incident_deleted", None, None),
                     ("decision_refused", "sara", None)]


def test_officers_act_on_their_own_recordings_only_and_holds_block_early_deletion(world, frames_30):
    from backoffice.catalog.models import RuleError

    world.record_incident("inc-1", frames_30)
    world.ingest()
    inc = _incident("inc-1")
    olga, otto = world.user("olga", "officer"), world.user("otto", "officer")
    inc.officer = "olga"
    inc.save()
    with pytest.raises(RuleError, match="may not"):
        inc.propose_deletion(world.office, by=otto, reason="not mine")
    inc.propose_deletion(world.office, by=olga, reason="recorded by mistake")
    with pytest.raises(RuleError, match="may not"):
        inc.place_hold(world.office, by=olga, case_reference="X", reason="y")  # holds: reviewer or supervisor
    inc.place_hold(world.office, by=world.user("rita", "reviewer"), case_reference="X 1", reason="evidence")
    with pytest.raises(RuleError, match="held"):
        inc.propose_deletion(world.office, by=olga, reason="again")


def test_an_interrupted_deletion_is_completed_by_the_next_run(world, frames_30, monkeypatch):
    from backoffice.catalog import retention, storefiles

    world.record_incident("inc-1", frames_30)
    world.ingest()
    world.clock.now = _incident("inc-1").end + timedelta(days=15)

    def crash(*args):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(storefiles, "fsync_dir", crash)  # after the unlinks, before 'done'
    with pytest.raises(KeyboardInterrupt):
        retention.run_retention(world.office)
    assert _incident("inc-1").state == "deleting" and _incident("inc-1").tombstone.completed_at is None
    monkeypatch.undo()
    report = retention.run_retention(world.office)
    assert report.resumed == ["kod-07/inc-1"] and report.deleted == []
    inc = _incident("inc-1")
    assert inc.state == "deleted" and inc.tombstone.completed_at is not None
    assert _files(world, "inc-1") == [storefiles.TOMBSTONE_FILE]


def test_dry_run_lists_and_changes_nothing(world, frames_30):
    from backoffice.catalog.retention import run_retention

    world.record_incident("inc-1", frames_30)
    world.ingest()
    before = world.log_path.read_bytes()
    world.clock.now = _incident("inc-1").end + timedelta(days=15)
    assert run_retention(world.office, dry_run=True).deleted == ["kod-07/inc-1"]
    assert _incident("inc-1").state == "active" and len(_files(world, "inc-1")) == 6
    assert world.log_path.read_bytes() == before


def test_an_admin_changes_a_sites_rule_and_active_incidents_follow(world, frames_30):
    from backoffice.catalog.models import RuleError
    from backoffice.catalog.profiles import ProfileError
    from backoffice.catalog.retention import run_retention

    world.record_incident("inc-1", frames_30)
    world.ingest()
    site = _incident("inc-1").site
    with pytest.raises(RuleError, match="admin role"):
        site.set_policy(world.office, by=world.user("sven", "supervisor"), profile_code="BY")
    admin = world.user("anna", "admin")
    with pytest.raises(ProfileError):
        site.set_policy(world.office, by=admin, period="fortnight")
    assert site.set_policy(world.office, by=admin, profile_code="BY") == 1
    inc = _incident("inc-1")
    assert inc.expires_at.month == inc.end.month + 2 and "Art. 33 PAG" in inc.site.rule()
    world.clock.now = inc.end + timedelta(days=30)
    assert run_retention(world.office).deleted == []  # NRW would have deleted it by now
    assert [f for e, f in _events(world) if e == "site_policy_changed"][0]["by"] == "anna"


def test_reports_name_what_expires_when_and_what_was_deleted_under_which_rule(world, frames_30):
    from backoffice.catalog import reports
    from backoffice.catalog.retention import run_retention

    world.record_incident("inc-1", frames_30[:10])
    world.record_incident("inc-2", frames_30[10:])
    world.ingest()
    inc1, inc2 = _incident("inc-1"), _incident("inc-2")
    inc2.place_hold(world.office, by=world.user("rita", "reviewer"), case_reference="OWi 9/25", reason="complaint")
    now = inc1.end + timedelta(days=10)
    rows = reports.expiring(now, now + timedelta(days=7))
    assert [(r["incident"], r["held"], r["overdue"]) for r in rows] == [
        ("kod-07/inc-1", [], False), ("kod-07/inc-2", ["OWi 9/25"], False)]
    assert reports.expiring(now, now + timedelta(days=3)) == []
    world.clock.now = inc2.end + timedelta(days=14)
    run_retention(world.office)
    gone = reports.deletions(world.clock.now - timedelta(days=1), world.clock.now + timedelta(seconds=1))
    assert [(r["incident"], r["decided_by"], r["segments"]) for r in gone] == [("kod-07/inc-1", ["retention timer"], 1)]
    assert gone[0]["bytes"] == inc1.segments.get().ciphertext_bytes and "§ 15c" in gone[0]["rule"]


def test_an_approval_is_refused_when_the_incident_was_held_meanwhile_or_the_hold_is_already_lifted(world, frames_30):
    from backoffice.catalog.models import RuleError

    world.record_incident("inc-1", frames_30)
    world.ingest()
    rita, sven, sara = world.user("rita", "reviewer"), world.user("sven", "supervisor"), world.user("sara", "supervisor")
    deletion = _incident("inc-1").propose_deletion(world.office, by=rita, reason="mistake")
    hold = _incident("inc-1").place_hold(world.office, by=rita, case_reference="OWi 2/25", reason="complaint")
    with pytest.raises(RuleError, match="held"):
        deletion.approve(world.office, by=sven)
    deletion.refresh_from_db()
    assert deletion.state == "proposed" and _incident("inc-1").state == "active"
    first, second = (hold.propose_release(world.office, by=rita, reason=r) for r in ("closed", "closed too"))
    first.approve(world.office, by=sven)
    with pytest.raises(RuleError, match="already lifted"):
        second.approve(world.office, by=sara)
    hold.refresh_from_db()
    assert hold.lifted_by == sven


def test_a_segment_arriving_after_its_incident_was_deleted_is_deleted_by_the_next_run(world, frames_30, caplog):
    from backoffice.catalog.models import Incident, Segment, Tombstone
    from backoffice.catalog.retention import run_retention

    sealed = world.record_incident("inc-1", frames_30)
    directory = world.store / "duisburg" / "kod-07" / "inc-1"
    names = (sealed[-1].ciphertext_name, sealed[-1].manifest_name)
    held_back = {name: (directory / name).read_bytes() for name in names}
    for name in names:
        (directory / name).unlink()  # the device was offline: its last segment is not uploaded yet
    world.ingest()
    world.clock.now = _incident("inc-1").end + timedelta(days=14)
    run_retention(world.office)
    first = Tombstone.objects.get()
    assert len(first.segments) == 2 and _incident("inc-1").state == Incident.DELETED

    world.clock.now += timedelta(days=3)  # back online: the last segment is stored (and its receipt goes out)
    for name, data in held_back.items():
        (directory / name).write_bytes(data)
    assert world.ingest().added == 1
    assert "arrived after its incident kod-07/inc-1 was deleted" in caplog.text
    assert [f["stem"] for e, f in _events(world) if e == "segment_after_deletion"] == [sealed[-1].stem]
    assert _incident("inc-1").state == Incident.DELETING
    assert [s["stem"] for s in Tombstone.objects.get().segments] == [s.stem for s in sealed]

    report = run_retention(world.office)
    assert report.resumed == ["kod-07/inc-1"] and not any(directory.glob("*.age")) and not any(directory.glob("*.m*"))
    tombstone = Tombstone.objects.get()
    assert _incident("inc-1").state == Incident.DELETED and tombstone.completed_at == first.completed_at
    signed = json.loads((directory / "incident.tombstone.json").read_bytes())
    assert [s["stem"] for s in signed["segments"]] == [s.stem for s in sealed]
    assert Segment.objects.filter(incident__incident_id="inc-1").count() == 3  # the catalog keeps the rows
    assert run_retention(world.office).resumed == []  # done: nothing left for the run after
