"""The incident list: each filter narrows it, pages of 50 newest first, held ones marked, officers see
their own; and the list's rule agrees with may_see, the catalog's rule for one incident."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from .conftest import T0, cast, frames_at, record, signed_in


def _listed(response) -> list[str]:
    return re.findall(r"<td>duisburg</td><td>kod-07</td><td>([^<]+)</td>", response.content.decode())


@pytest.fixture
def three(review):
    people = cast(review)
    record(review, "a", frames_at(0), officer="olga")
    record(review, "b", frames_at(3600), officer="otto")
    c = record(review, "c", frames_at(86400), officer="olga")  # the next day
    c.place_hold(review.office, by=people["rita"], case_reference="AZ 1", reason="x")
    return people


def test_filters_narrow_the_list_newest_first(review, three):
    client = signed_in(three["rita"])
    day = (T0 + timedelta(hours=2)).date().isoformat()
    assert _listed(client.get("/incidents/")) == ["c", "b", "a"]
    assert _listed(client.get("/incidents/", {"day": day})) == ["b", "a"]
    assert _listed(client.get("/incidents/", {"officer": "olga"})) == ["c", "a"]
    assert _listed(client.get("/incidents/", {"held": "yes"})) == ["c"]
    assert _listed(client.get("/incidents/", {"held": "no", "officer": "olga"})) == ["a"]
    assert _listed(client.get("/incidents/", {"device": "kod-99"})) == []
    assert _listed(client.get("/incidents/", {"site": "duisburg", "state": "active"})) == ["c", "b", "a"]


def test_a_bad_filter_value_is_shown_not_obeyed(review, three):
    response = signed_in(three["rita"]).get("/incidents/", {"day": "gestern"})
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    assert _listed(response) == ["c", "b", "a"]


def test_an_officer_lists_only_her_own(review, three):
    assert _listed(signed_in(three["olga"]).get("/incidents/")) == ["c", "a"]


def test_pages_of_fifty(review, monkeypatch):
    from backoffice.web.views import incidents

    people = cast(review)
    for name in "pqrst":
        record(review, name, frames_at(ord(name)))
    monkeypatch.setattr(incidents, "PAGE_SIZE", 2)
    client = signed_in(people["rita"])
    first = client.get("/incidents/", {"officer": "olga"})
    assert _listed(first) == ["t", "s"] and 'rel="next"' in first.content.decode()
    assert _listed(client.get("/incidents/", {"officer": "olga", "page": 3})) == ["p"]
    last = client.get("/incidents/", {"officer": "olga", "page": 3}).content.decode()
    assert 'rel="next"' not in last and "officer=olga&amp;page=2" in last


def test_the_lists_rule_is_may_see(review, three):
    from backoffice.catalog.models import Incident, may_see, visible_incidents

    for user in three.values():
        listed = set(visible_incidents(user, Incident.objects.all()))
        assert listed == {i for i in Incident.objects.all() if may_see(user, i, video=False)}, user.username
