"""The data-protection officer's pages: the access log (filtered by person and day), the deletion report
with rule and deciders, the expiring list, and the Art. 15 search's place."""

from __future__ import annotations

import re
from datetime import timedelta

from .conftest import T0, cast, frames_at, record, signed_in


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


def test_the_art_15_search_says_when_it_is_not_connected(review, monkeypatch):
    from backoffice.catalog import reports

    people = cast(review)
    record(review, "inc-1", frames_at(0))
    monkeypatch.delattr(reports, "subject_report", raising=False)
    text = _text(signed_in(people["dana"]).get("/privacy/subject/"))
    assert "Diese Suche ist noch nicht angeschlossen" in text


def test_the_art_15_search_shows_the_reports_rows(review, monkeypatch):
    from backoffice.catalog import reports

    people = cast(review)
    record(review, "inc-1", frames_at(0))
    asked = []

    def subject_report(site, since, until):
        asked.append((site, since, until))
        return [{"incident": "kod-07/inc-1", "accesses": 2}]

    monkeypatch.setattr(reports, "subject_report", subject_report, raising=False)
    text = _text(signed_in(people["dana"]).get("/privacy/subject/", {"site": "duisburg", "since": "2025-06-15T11:00",
                                                                     "until": "2025-06-15T13:00"}))
    assert "incident accesses kod-07/inc-1 2" in text
    (site, since, until), = asked
    assert site == "duisburg" and until - since == timedelta(hours=2)
    assert since == T0 + timedelta(hours=1)  # 11:00 in Berlin (summer time) is 09:00 UTC; T0 is 08:00 UTC
