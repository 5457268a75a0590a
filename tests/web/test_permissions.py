"""Every URL of the review app × every role -> the status the server answers (table-driven).

The table must name every URL pattern: a new view without its row fails
:func:`test_every_url_has_a_row`. Allowed actions answer 302 (back to the incident page, done or refused
with a message; playing: on to the player). The video URLs run against a real custodian: an export answers
the court package (200); the player, its timeline and each piece answer only the person whose playback
access it is, in the session that stated the purpose -- everyone else tries with another person's access.
"""

from __future__ import annotations

import pytest

from .conftest import cast, frames_30, record, signed_in  # noqa: F401

ROLES = ("anonymous", "nora", "olga", "otto", "rita", "sue", "dana", "adam")
#         anonymous, no role, officer (own), officer (other's), reviewer, supervisor, data-protection, admin
ANYONE = dict.fromkeys(ROLES)

TABLE = {
    # name: (method, expected per role in ROLES order)
    "login":                     ("get",  (200, 200, 200, 200, 200, 200, 200, 200)),
    "logout":                    ("post", (302, 302, 302, 302, 302, 302, 302, 302)),
    "set_language":              ("post", (302, 302, 302, 302, 302, 302, 302, 302)),
    "static":                    ("get",  (200, 200, 200, 200, 200, 200, 200, 200)),
    "dashboard":                 ("get",  (302, 403, 200, 200, 200, 200, 200, 200)),
    "incident_list":             ("get",  (302, 403, 200, 200, 200, 200, 200, 200)),
    "incident_detail":           ("get",  (302, 403, 200, 403, 200, 200, 200, 200)),
    "incident_hold":             ("post", (302, 403, 403, 403, 302, 302, 403, 403)),
    "incident_propose_deletion": ("post", (302, 403, 302, 403, 302, 302, 403, 403)),
    "hold_propose_release":      ("post", (302, 403, 302, 403, 302, 302, 403, 403)),
    "decision_approve":          ("post", (302, 403, 403, 403, 403, 302, 403, 403)),
    "incident_play":             ("post", (302, 403, 302, 403, 302, 302, 403, 403)),
    "incident_export":           ("post", (302, 403, 200, 403, 200, 200, 403, 403)),
    "playback_player":           ("get",  (302, 403, 200, 403, 200, 200, 403, 403)),
    "playback_timeline":         ("get",  (302, 403, 200, 403, 200, 200, 403, 403)),
    "playback_piece":            ("get",  (302, 403, 200, 403, 200, 200, 403, 403)),
    "privacy_accesses":          ("get",  (302, 403, 403, 403, 403, 403, 200, 403)),
    "privacy_deletions":         ("get",  (302, 403, 403, 403, 403, 403, 200, 403)),
    "privacy_expiring":          ("get",  (302, 403, 403, 403, 403, 403, 200, 403)),
    "privacy_subject":           ("get",  (302, 403, 403, 403, 403, 403, 200, 403)),
}

#: POST data that each action accepts (so a refusal is about the role, not the form).
DATA = {"incident_hold": {"case_reference": "AZ 1/25", "reason": "Anzeige"},
        "incident_propose_deletion": {"reason": "Fehlaufnahme"}, "hold_propose_release": {"reason": "erledigt"},
        "incident_play": {"purpose": "Sichtung"}, "incident_export": {"purpose": "Staatsanwaltschaft"},
        "set_language": {"language": "de", "next": "/"}}


def url_names() -> set[str]:
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns)
            elif isinstance(p, URLPattern):
                yield p.name

    return set(walk(get_resolver().url_patterns))


def test_every_url_has_a_row(review):
    names = url_names()
    assert None not in names, "every URL pattern needs a name (and a row here)"
    assert names - set(TABLE) == set(), "a URL without a permission row: add it to TABLE"
    assert set(TABLE) - names == set(), "a row for a URL that no longer exists"


def test_every_view_declares_who_may_use_it(review):
    """Each view carries a decision: its roles (access.roles_required) or explicitly public."""
    from django.urls import get_resolver

    undeclared = [p.name for p in get_resolver().url_patterns if not hasattr(p.callback, "roles")]
    assert undeclared == []


#: The URLs that need the custodian; the playback ones need an access (the role's own, or another's).
VIDEO = {"incident_play", "incident_export", "playback_player", "playback_timeline", "playback_piece"}
PLAYBACK = {"playback_player", "playback_timeline", "playback_piece"}


def _kwargs(name: str, objects: dict) -> dict:
    if name in ("incident_detail", "incident_hold", "incident_propose_deletion", "incident_play", "incident_export"):
        return {"pk": objects["incident"].pk}
    if name == "hold_propose_release":
        return {"pk": objects["hold"].pk}
    if name == "decision_approve":
        return {"pk": objects["decision"].pk}
    if name == "static":
        return {"path": "web/app.css"}
    if name in PLAYBACK:
        access = {"access": objects["access"].pk}
        return {**access, "stem": objects["stem"]} if name == "playback_piece" else access
    return {}


def _own_playback(client, objects: dict) -> dict:
    """The objects with the client's own playback access, if its person may open one (in its session)."""
    from django.urls import reverse

    from backoffice.catalog.models import Access

    response = client.post(reverse("incident_play", args=[objects["incident"].pk]), {"purpose": "Sichtung"})
    if response.status_code != 302 or "/playback/" not in response["Location"]:
        return objects
    return {**objects, "access": Access.objects.filter(kind=Access.PLAYBACK).latest("pk")}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_who_gets_what(review, frames_30, name, request):
    from django.test import Client
    from django.urls import reverse

    from backoffice.catalog.models import Access

    if name in VIDEO:
        request.getfixturevalue("custody")
    people = cast(review)
    incident = record(review, "inc-1", frames_30, officer="olga")
    hold = incident.place_hold(review.office, by=people["rita"], case_reference="AZ 0/25", reason="Beweis")
    objects = {"incident": incident, "hold": hold}
    if name == "decision_approve":  # the incident must be unheld for an early deletion
        hold.propose_release(review.office, by=people["rita"], reason="x")
        objects["decision"] = hold.decisions.get()
    if name in PLAYBACK:  # someone else's (a second supervisor's), for those who cannot open their own
        objects["access"] = Access.open(review.office, user=people["sam"], incident=incident, kind=Access.PLAYBACK,
                                        purpose="Kontrolle")
        objects["stem"] = incident.segments.order_by("seq").first().stem
    method, expected = TABLE[name]
    got = {}
    for role in ROLES:
        client = Client() if role == "anonymous" else signed_in(people[role])
        mine = _own_playback(client, objects) if name in PLAYBACK and role != "anonymous" else objects
        response = getattr(client, method)(reverse(name, kwargs=_kwargs(name, mine)), DATA.get(name, {}))
        if response.streaming:
            b"".join(response.streaming_content)  # the court package, made to its end
        got[role] = response.status_code
    assert got == dict(zip(ROLES, expected, strict=True))


def test_the_forbidden_page_is_ours_and_not_a_csrf_refusal(review, frames_30):
    from django.urls import reverse

    people = cast(review)
    incident = record(review, "inc-1", frames_30)
    response = signed_in(people["dana"]).post(reverse("incident_play", args=[incident.pk]), {"purpose": "Kontrolle"})
    assert response.status_code == 403
    assert 'id="forbidden"' in response.content.decode()
