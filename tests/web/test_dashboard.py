"""The start page: expiring soon (holds named), awaiting my approval, recordings that need a look (with
the reason), devices without a recording for a while; each person sees only what they may open."""

from __future__ import annotations

import re
from datetime import timedelta

from .conftest import cast, frames_at, record, signed_in


def _section(page: str, heading_id: str) -> str:
    start = page.index(f'id="{heading_id}"')
    end = page.find("<section", start)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page[start:end if end > 0 else None]))


def test_what_expires_within_a_week_with_its_holds(review):
    people = cast(review)
    record(review, "inc-1", frames_at(0))
    held = record(review, "inc-2", frames_at(60))
    held.place_hold(review.office, by=people["rita"], case_reference="AZ 7/25", reason="Beweis")
    client = signed_in(people["rita"])
    assert "kod-07/inc-1" not in _section(client.get("/").content.decode(), "h-expiring")  # 14 days left
    review.clock.now += timedelta(days=8)
    client = signed_in(people["rita"])
    section = _section(client.get("/").content.decode(), "h-expiring")
    assert "kod-07/inc-1" in section and "kod-07/inc-2 duisburg gesperrt: AZ 7/25 (wird nicht gelöscht)" in section


def test_recordings_needing_a_look_name_their_reason(review):
    people = cast(review)
    record(review, "inc-ok", frames_at(0))
    record(review, "inc-hole", frames_at(60, 40), drop=(1,))
    record(review, "inc-cut", frames_at(120), restart=True)
    record(review, "inc-open", frames_at(180), final=False)
    section = _section(signed_in(people["sue"]).get("/").content.decode(), "h-problems")
    assert "inc-ok" not in section
    assert "kod-07/inc-hole Segment fehlt" in section
    assert "kod-07/inc-cut durch Neustart unterbrochen" in section
    assert "kod-07/inc-open unvollständig" in section


def test_devices_without_a_recording_for_three_days(review):
    people = cast(review)
    record(review, "inc-1", frames_at(0))
    assert "kod-07" not in _section(signed_in(people["sue"]).get("/").content.decode(), "h-quiet")
    review.clock.now += timedelta(hours=72, seconds=2)
    assert "kod-07 duisburg" in _section(signed_in(people["sue"]).get("/").content.decode(), "h-quiet")


def test_an_officer_sees_only_her_own_recordings(review):
    people = cast(review)
    record(review, "inc-olga", frames_at(0), officer="olga", drop=(1,))
    record(review, "inc-otto", frames_at(60), officer="otto", drop=(1,))
    review.clock.now += timedelta(days=8)
    page = signed_in(people["olga"]).get("/").content.decode()
    assert "inc-olga" in page and "inc-otto" not in page


def test_a_person_without_a_role_is_told_so(review):
    response = signed_in(review.user("nora")).get("/")
    assert response.status_code == 403 and "Ihre Rolle erlaubt das nicht" in response.content.decode()
