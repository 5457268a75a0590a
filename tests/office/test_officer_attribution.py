"""Officer check-out in the back office: a verified manifest's officer attributes the incident, and that officer
(whose user name is the pseudonymous id) sees it in the review app; nobody else with the officer role does."""

from __future__ import annotations

import json

import pytest

from evidence.keys import load_device_public_keys
from evidence.seal import Manifest


def _log(world) -> list[tuple[str, dict]]:
    return [(d["event"], d["fields"]) for d in map(json.loads, world.log_path.read_text().splitlines())]


def test_the_manifests_officer_sees_their_own_recording_and_only_they(world, frames_30):
    from backoffice.catalog.models import Access, Incident, RuleError, may_see

    world.record_incident("inc-1", frames_30, officer="ko-17")
    world.record_incident("inc-2", frames_30)  # recorded while nobody was assigned
    assert world.ingest().added == 6
    mine, nobodys = Incident.objects.get(incident_id="inc-1"), Incident.objects.get(incident_id="inc-2")
    assert (mine.officer, nobodys.officer) == ("ko-17", "")
    ko17, ko23 = world.user("ko-17", "officer"), world.user("ko-23", "officer")
    assert may_see(ko17, mine, video=True) and not may_see(ko23, mine, video=True)
    assert not may_see(ko17, nobodys, video=False)
    Access.open(world.office, user=ko17, incident=mine, kind=Access.PLAYBACK, purpose="Bericht schreiben")
    with pytest.raises(RuleError, match="ko-23 may not open"):
        Access.open(world.office, user=ko23, incident=mine, kind=Access.PAGE)
    log = _log(world)
    assert [f for e, f in log if e == "incident_attributed"] == [
        {"incident": str(mine), "officer": "ko-17", "stem": "kod-07-0000000001"}]  # its first segment
    cataloged = [f["officer"] for e, f in log if e == "segment_cataloged"]
    assert cataloged == ["ko-17"] * 3 + [None] * 3


def test_an_unverified_manifest_attributes_nobody(world, frames_30):
    from backoffice.catalog.ingest import reconcile
    from backoffice.catalog.models import Incident, Segment

    world.record_incident("inc-1", frames_30, officer="ko-17")
    reconcile(world.office, {})  # the device's key is not enrolled: nobody can say the manifest is genuine
    incident = Incident.objects.get(incident_id="inc-1")
    assert {s.verification for s in Segment.objects.all()} == {"unverified"} and incident.officer == ""
    assert not any(e == "incident_attributed" for e, _ in _log(world))


def test_an_attributed_incident_keeps_its_officer(world, frames_30):
    from backoffice.catalog.models import Incident
    from backoffice.catalog.receiving import CatalogRecorder

    sealed = world.record_incident("inc-1", frames_30, officer="ko-17")
    incident_created = Manifest.parse(sealed[0].manifest)
    recorder = CatalogRecorder(world.office, load_device_public_keys([world.env.device / "device.pub"]))
    recorder([incident_created])
    incident = Incident.objects.get(incident_id="inc-1")
    incident.officer = "ko-99"  # set by hand in the back office before (or instead of) the device's word
    incident.save()
    recorder([Manifest.parse(s.manifest) for s in sealed[1:]])  # as the receiver does: a few at once
    assert Incident.objects.get(incident_id="inc-1").officer == "ko-99"
    mismatches = [f for e, f in _log(world) if e == "officer_mismatch"]
    assert [(f["officer"], f["manifest_officer"]) for f in mismatches] == [("ko-99", "ko-17")] * 2
