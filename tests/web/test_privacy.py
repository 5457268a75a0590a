"""The data-protection officer's pages: the access log (filtered by person and day), the deletion report
with rule and deciders, the expiring list, and the Art. 15 search's place."""

from __future__ import annotations

import re
from datetime import timedelta

from .conftest import T0, audit, cast, frames_at, record, signed_in


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_the_access_log_shows_who_opened_what_and_why(review):
    from backoffice.catalog.models import Access

    people = cast(review)
    incident = record(review, "inc-1", frames_at(0))
    signed_in(people["rita"]).get(f"/incidents/{incident.pk}/")
    Access.open(review.office, user=people["sue"], incident=incident, kind=Access.EXPORT, purpose="StA Duisburg")
    dana = signed_in(people["dana"])
    text = _text(dana.get("/privacy/accesses/"))
    assert "sue kod-07/inc-1 exportiert StA Duisburg" in text
    assert "rita kod-07/inc-1 Seite geöffnet web 127.0.0.1" in text
    only_rita = _text(dana.get("/privacy/accesses/", {"user": "rita"}))
    assert "rita kod-07" in only_rita and "sue kod-07" not in only_rita
    next_day = (T0 + timedelta(days=1)).date().isoformat()
    assert "Kein Zugriff in dieser Zeit." in _text(dana.get("/privacy/accesses/", {"since": next_day}))


def test_the_deletion_report_names_rule_and_deciders(review):
    people = cast(review)
    incident = record(review, "inc-1", frames_at(0))
    incident.delete_with_tombstone(review.office, rule="early deletion, decision 9: Fehlaufnahme",
                                   by=["rita", "sue"])
    review.clock.now += timedelta(minutes=1)
    text = _text(signed_in(people["dana"]).get("/privacy/deletions/"))
    assert "kod-07/inc-1 duisburg early deletion, decision 9: Fehlaufnahme rita, sue 3" in text


def test_the_expiring_list_covers_the_days_asked_for(review):
    people = cast(review)
    record(review, "inc-1", frames_at(0))
    dana = signed_in(people["dana"])
    assert "kod-07/inc-1" not in _text(dana.get("/privacy/expiring/"))
    assert "kod-07/inc-1 duisburg site duisburg: NW" in _text(dana.get("/privacy/expiring/", {"days": 15}))


def test_the_art_15_search_lists_the_recordings_of_the_place_and_time_and_who_saw_them(review):
    from backoffice.catalog.models import Access

    people = cast(review)
    incident = record(review, "inc-1", frames_at(0))  # 10:00 in Berlin (T0 is 08:00 UTC, summer time)
    record(review, "inc-2", frames_at(3 * 3600))       # 13:00: outside the window asked for
    incident.place_hold(review.office, by=people["rita"], case_reference="AZ 5/25", reason="Anzeige")
    Access.open(review.office, user=people["sue"], incident=incident, kind=Access.PLAYBACK, purpose="Beschwerde")
    dana = signed_in(people["dana"])
    assert "Suchen" in _text(dana.get("/privacy/subject/"))
    assert [e for e, _ in audit(review) if e == "report_read"] == []  # no search, nothing read
    text = _text(dana.get("/privacy/subject/", {"site": "duisburg", "since": "2025-06-15T09:30",
                                                "until": "2025-06-15T11:00"}))
    assert "kod-07/inc-1" in text and "kod-07/inc-2" not in text
    assert "AZ 5/25 (rita)" in text and "sue: abgespielt – Beschwerde" in text
    assert "aufbewahrt bis" in text
    reads = [f for e, f in audit(review) if e == "report_read"]
    assert reads == [{"kind": "subject", "by": "dana", "via": "web 127.0.0.1",
                      "parameters": {"site": "duisburg", "from": "2025-06-15T07:30:00+00:00",
                                     "to": "2025-06-15T09:00:00+00:00"}}]
    empty = _text(dana.get("/privacy/subject/", {"site": "duisburg", "since": "2025-06-16T09:00",
                                                 "until": "2025-06-16T10:00"}))
    assert "Keine Aufnahme an diesem Standort in dieser Zeit." in empty


def test_reading_each_report_page_is_recorded(review):
    people = cast(review)
    record(review, "inc-1", frames_at(0))
    dana = signed_in(people["dana"])
    dana.get("/privacy/accesses/", {"user": "rita"})
    dana.get("/privacy/deletions/", {"days": 3})
    dana.get("/privacy/expiring/")
    assert [(f["kind"], f["parameters"], f["by"]) for e, f in audit(review) if e == "report_read"] == [
        ("access_log", {"since": None, "until": None, "user": "rita", "page": 1}, "dana"),
        ("deletions", {"days": 3}, "dana"), ("expiring", {"days": 7}, "dana")]
