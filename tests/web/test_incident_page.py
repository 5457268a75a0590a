"""The incident page: verification in plain words, the timeline (pre-event part, missing segments, a
restart's cut), holds, decisions and accesses; opening it is an access, refused ones are audited."""

from __future__ import annotations

import re
from datetime import timedelta

from .conftest import audit, frames_30, frames_at, record, signed_in  # noqa: F401


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_a_whole_verified_recording_says_so_and_marks_its_pre_event_part(review):
    incident = record(review, "inc-1", frames_at(0, 60), pre_event_frames=4)
    response = signed_in(review.user("rita", "reviewer")).get(f"/incidents/{incident.pk}/")
    text = _text(response)
    assert "Alle 6 Segmente sind echt (die Signatur des Geräts stimmt), keines fehlt" in text
    assert text.count("geprüft") >= 6
    assert 'class="has-pre"' in response.content.decode() and "davon 0:00 vor dem Auslösen" in text
    assert 'class="pre"' in response.content.decode()  # the pre-event part on the bar
    assert "Fehlt" not in text and "Neustart des Geräts unterbrochen" not in text


def test_a_missing_segment_is_named_in_words_and_in_the_timeline(review):
    incident = record(review, "inc-1", frames_at(0, 60), drop=(2, 3))
    text = _text(signed_in(review.user("rita", "reviewer")).get(f"/incidents/{incident.pk}/"))
    assert "2 Segmente sind nie angekommen (Nummern 2, 3): die Aufnahme hat Lücken." in text
    assert "2, 3 Fehlen: diese Segmente sind nie angekommen" in text


def test_a_restart_cut_and_an_unfinished_upload_are_explained(review):
    cut_short = record(review, "inc-1", frames_at(0, 30), restart=True)
    uploading = record(review, "inc-2", frames_at(60, 30), final=False)
    client = signed_in(review.user("rita", "reviewer"))
    text = _text(client.get(f"/incidents/{cut_short.pk}/"))
    assert "durch einen Neustart des Geräts unterbrochen (Stromausfall oder Absturz)" in text
    assert "Hier durch einen Neustart des Geräts unterbrochen" in text
    text = _text(client.get(f"/incidents/{uploading.pk}/"))
    assert "Das letzte Segment ist noch nicht angekommen" in text


def test_unverified_segments_are_not_called_authentic(review, frames_30):
    from backoffice.catalog.ingest import reconcile
    from backoffice.catalog.models import Incident

    review.record_incident("inc-1", frames_30)
    reconcile(review.office, None)  # no device key enrolled
    incident = Incident.objects.get(incident_id="inc-1")
    text = _text(signed_in(review.user("rita", "reviewer")).get(f"/incidents/{incident.pk}/"))
    assert "3 Segmente konnten nicht geprüft werden" in text and "sind echt" not in text


def test_opening_the_page_is_an_access_in_the_table_the_page_and_the_audit_log(review, frames_30):
    from backoffice.catalog.models import Access

    incident = record(review, "inc-1", frames_30)
    dana = review.user("dana", "data-protection")
    response = signed_in(dana).get(f"/incidents/{incident.pk}/")
    assert response.status_code == 200
    access = Access.objects.get()
    assert (access.user, access.kind, access.via) == (dana, "page", "web 127.0.0.1")
    assert "dana" in _text(response) and "hat diese Seite geöffnet" in _text(response)
    assert ("access", {"access": access.pk, "incident": "kod-07/inc-1", "kind": "page", "purpose": "", "by": "dana",
                       "via": "web 127.0.0.1"}) in audit(review)
    assert "Abspielen" not in _text(response)  # no video for the data-protection officer: no form either


def test_an_officer_cannot_open_anothers_recording_and_the_refusal_is_audited(review, frames_30):
    from backoffice.catalog.models import Access

    incident = record(review, "inc-1", frames_30, officer="olga")
    response = signed_in(review.user("otto", "officer")).get(f"/incidents/{incident.pk}/")
    assert response.status_code == 403 and not Access.objects.exists()
    assert audit(review)[-1][0] == "access_refused" and audit(review)[-1][1]["by"] == "otto"


def test_a_deleted_incident_shows_its_tombstone_and_no_actions(review, frames_30):
    incident = record(review, "inc-1", frames_30)
    incident.delete_with_tombstone(review.office, rule="site duisburg: NW 14d", by=["retention timer"])
    text = _text(signed_in(review.user("sue", "supervisor")).get(f"/incidents/{incident.pk}/"))
    assert "nach der Regel „site duisburg: NW 14d“, entschieden von retention timer" in text
    assert "Löschsperre setzen" not in text and "Abspielen" not in text and "Löschung vorschlagen" not in text


def test_the_access_history_is_the_access_report_with_refusals_holds_and_decisions(review, frames_30):
    from backoffice.catalog.models import Access

    incident = record(review, "inc-1", frames_30, officer="olga")
    rita, sue = review.user("rita", "reviewer"), review.user("sue", "supervisor")
    signed_in(review.user("otto", "officer")).get(f"/incidents/{incident.pk}/")  # refused: not his
    review.clock.now += timedelta(minutes=1)
    hold = incident.place_hold(review.office, by=rita, case_reference="AZ 9/25", reason="Anzeige")
    hold.propose_release(review.office, by=rita, reason="eingestellt")
    Access.open(review.office, user=sue, incident=incident, kind=Access.EXPORT, purpose="StA 1 Js 2/25")
    review.clock.now += timedelta(minutes=1)
    text = _text(signed_in(sue).get(f"/incidents/{incident.pk}/"))
    history = text[text.index("Zugriffe"):]
    for words in ("otto abgelehnt: diese Seite öffnen (otto may not open kod-07/inc-1)",
                  "rita hat eine Löschsperre gesetzt AZ 9/25: Anzeige",
                  "rita hat die Aufhebung einer Löschsperre vorgeschlagen eingestellt",
                  "sue exportiert StA 1 Js 2/25", "sue hat diese Seite geöffnet web 127.0.0.1"):
        assert words in history, words
    assert history.index("sue hat diese Seite geöffnet") < history.index("otto abgelehnt")  # newest first


def test_an_unknown_incident_is_404(review):
    assert signed_in(review.user("rita", "reviewer")).get("/incidents/999/").status_code == 404
