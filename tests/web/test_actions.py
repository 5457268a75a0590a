"""Hold, propose and approve through the pages: the catalog's four-eyes rules hold, refusals come back as
messages, and every step is in the signed audit log."""

from __future__ import annotations

import re

from .conftest import audit, cast, frames_30, record, signed_in  # noqa: F401


def _messages(client, incident) -> str:
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    return " ".join(re.findall(r'<li class="(?:success|error|info)">(.*?)</li>', page, re.S))


def test_a_reviewer_places_a_hold_and_it_is_shown_and_audited(review, frames_30):
    people = cast(review)
    incident = record(review, "inc-1", frames_30)
    client = signed_in(people["rita"])
    response = client.post(f"/incidents/{incident.pk}/hold/", {"case_reference": "AZ 123/25", "reason": "Anzeige"})
    assert response.status_code == 302 and response["Location"] == f"/incidents/{incident.pk}/"
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "Löschsperre 1 gesetzt" in page and "AZ 123/25" in page and "als Beweismittel gesperrt (AZ 123/25)" in page
    assert ("hold_placed", {"hold": 1, "incident": "kod-07/inc-1", "case_reference": "AZ 123/25",
                            "reason": "Anzeige", "by": "rita"}) in audit(review)


def test_a_hold_without_a_case_reference_is_not_placed(review, frames_30):
    from backoffice.catalog.models import Hold

    people = cast(review)
    incident = record(review, "inc-1", frames_30)
    client = signed_in(people["rita"])
    client.post(f"/incidents/{incident.pk}/hold/", {"case_reference": " ", "reason": "Anzeige"})
    assert not Hold.objects.exists()
    assert "Nicht ausgeführt: Aktenzeichen" in _messages(client, incident)


def test_an_officer_proposes_deleting_her_own_recording_and_another_supervisor_approves(review, frames_30):
    from backoffice.catalog.models import Incident

    people = cast(review)
    incident = record(review, "inc-1", frames_30, officer="olga")
    olga = signed_in(people["olga"])
    olga.post(f"/incidents/{incident.pk}/propose-deletion/", {"reason": "versehentlich ausgelöst"})
    assert "Vorzeitige Löschung vorgeschlagen (Entscheidung 1)" in _messages(olga, incident)

    sue = signed_in(people["sue"])
    dashboard = sue.get("/").content.decode()
    assert "Wartet auf meine Zustimmung" in dashboard and "versehentlich ausgelöst" in dashboard
    response = sue.post("/decisions/1/approve/")
    assert response.status_code == 302
    assert "Bestätigt: die Aufnahme ist gelöscht" in _messages(sue, incident)
    assert Incident.objects.get(pk=incident.pk).state == Incident.DELETED
    events = [e for e, _ in audit(review)]
    assert events.index("decision_proposed") < events.index("decision_approved") < events.index("incident_deleted")


def test_self_approval_is_refused_with_a_message_and_audited(review, frames_30):
    from backoffice.catalog.models import Incident

    people = cast(review)
    incident = record(review, "inc-1", frames_30)
    sue = signed_in(people["sue"])
    sue.post(f"/incidents/{incident.pk}/propose-deletion/", {"reason": "Fehlaufnahme"})
    assert "Wartet auf meine Zustimmung" in sue.get("/").content.decode()
    assert "Fehlaufnahme" not in sue.get("/").content.decode().split("Meine Vorschläge")[0]  # not offered to her
    sue.post("/decisions/1/approve/")
    assert "Abgelehnt: Niemand darf den eigenen Vorschlag bestätigen" in _messages(sue, incident)
    assert Incident.objects.get(pk=incident.pk).state == Incident.ACTIVE
    refused = audit(review)[-2]  # then the page access
    assert refused[0] == "decision_refused" and refused[1]["reason"].startswith("self-approval")  # the log: English
    sue.post("/language/", {"language": "en", "next": "/"})
    sue.post("/decisions/1/approve/")
    assert "Refused: Nobody may approve their own proposal" in _messages(sue, incident)


def test_a_held_incident_cannot_be_proposed_for_deletion(review, frames_30):
    people = cast(review)
    incident = record(review, "inc-1", frames_30)
    incident.place_hold(review.office, by=people["rita"], case_reference="AZ 1", reason="Beweis")
    client = signed_in(people["rita"])
    client.post(f"/incidents/{incident.pk}/propose-deletion/", {"reason": "x"})
    assert "Vorfall kod-07/inc-1 hat eine Löschsperre; sie muss zuerst aufgehoben" in _messages(client, incident)


def test_releasing_a_hold_takes_two_people(review, frames_30):
    from backoffice.catalog.models import Hold

    people = cast(review)
    incident = record(review, "inc-1", frames_30)
    hold = incident.place_hold(review.office, by=people["rita"], case_reference="AZ 1", reason="Beweis")
    rita = signed_in(people["rita"])
    rita.post(f"/holds/{hold.pk}/propose-release/", {"reason": "Verfahren eingestellt"})
    assert "Aufhebung der Löschsperre 1 vorgeschlagen" in _messages(rita, incident)
    signed_in(people["sue"]).post("/decisions/1/approve/")
    assert Hold.objects.get(pk=hold.pk).lifted_by == people["sue"]
    assert [e for e, _ in audit(review)][-2:] == ["decision_approved", "hold_lifted"]


def test_actions_need_a_post(review, frames_30):
    people = cast(review)
    incident = record(review, "inc-1", frames_30)
    client = signed_in(people["sue"])
    assert client.get(f"/incidents/{incident.pk}/hold/").status_code == 405
    assert client.get(f"/incidents/{incident.pk}/propose-deletion/").status_code == 405


def test_playing_needs_a_purpose_and_records_it(review, frames_30):
    from backoffice.catalog.models import Access

    people = cast(review)
    incident = record(review, "inc-1", frames_30)
    client = signed_in(people["rita"])
    response = client.post(f"/incidents/{incident.pk}/play/", {"purpose": " "})
    assert response.status_code == 302 and "braucht einen angegebenen Zweck" in _messages(client, incident)
    response = client.post(f"/incidents/{incident.pk}/play/", {"purpose": "Anzeige 12/2025"})
    assert response.status_code == 503  # until the custodian is connected
    assert Access.objects.filter(kind="playback").get().purpose == "Anzeige 12/2025"


def test_the_data_protection_officer_never_gets_video_and_the_attempt_is_audited(review, frames_30):
    from backoffice.catalog.models import Access

    people = cast(review)
    incident = record(review, "inc-1", frames_30)
    client = signed_in(people["dana"])
    for kind in ("play", "export"):
        assert client.post(f"/incidents/{incident.pk}/{kind}/", {"purpose": "Kontrolle"}).status_code == 403
    assert not Access.objects.exists()
    refused = [f["kind"] for e, f in audit(review) if e == "access_refused"]
    assert refused == ["playback", "export"]
