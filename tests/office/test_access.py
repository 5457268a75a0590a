"""Who may open, watch and export an incident, and that every access and refusal is in the signed log."""

from __future__ import annotations

import json

import pytest


def _incident(name: str):
    from backoffice.catalog.models import Incident

    return Incident.objects.get(incident_id=name)


def _log(world) -> list[tuple[str, dict]]:
    return [(d["event"], d["fields"]) for d in map(json.loads, world.log_path.read_text().splitlines())]


def test_each_role_sees_what_it_may_and_every_access_and_refusal_is_logged(world, frames_30):
    from backoffice.catalog.models import Access, RuleError

    world.record_incident("inc-1", frames_30)
    world.ingest()
    inc = _incident("inc-1")
    inc.officer = "olga"
    inc.save()
    olga, otto = world.user("olga", "officer"), world.user("otto", "officer")
    rita, dana = world.user("rita", "reviewer"), world.user("dana", "data-protection")

    Access.open(world.office, user=rita, incident=inc, kind=Access.PLAYBACK, purpose="Anzeige 12/2025")
    Access.open(world.office, user=olga, incident=inc, kind=Access.EXPORT, purpose="Bußgeldstelle")
    Access.open(world.office, user=dana, incident=inc, kind=Access.PAGE)
    refusals = [
        (dict(user=dana, kind=Access.PLAYBACK, purpose="Kontrolle"), "may not watch"),
        (dict(user=otto, kind=Access.PAGE), "may not open"),
        (dict(user=rita, kind=Access.PLAYBACK, purpose="  "), "needs a stated purpose"),
        (dict(user=rita, kind="download", purpose="x"), "unknown access kind"),
    ]
    for kwargs, message in refusals:
        with pytest.raises(RuleError, match=message):
            Access.open(world.office, incident=inc, **kwargs)

    rows = list(Access.objects.filter(incident=inc).order_by("pk").values_list("user__username", "kind", "purpose"))
    assert rows == [("rita", "playback", "Anzeige 12/2025"), ("olga", "export", "Bußgeldstelle"), ("dana", "page", "")]
    logged = [(e, f["by"], f["kind"]) for e, f in _log(world) if e in ("access", "access_refused")]
    assert logged == [("access", "rita", "playback"), ("access", "olga", "export"), ("access", "dana", "page"),
                      ("access_refused", "dana", "playback"), ("access_refused", "otto", "page"),
                      ("access_refused", "rita", "playback"), ("access_refused", "rita", "download")]


def test_a_deleted_incidents_video_cannot_be_opened(world, frames_30):
    from backoffice.catalog.models import Access, RuleError

    world.record_incident("inc-1", frames_30)
    world.ingest()
    inc = _incident("inc-1")
    inc.delete_with_tombstone(world.office, rule="test", by=["a", "b"])
    with pytest.raises(RuleError, match="deleted"):
        Access.open(world.office, user=world.user("rita", "reviewer"), incident=inc, kind=Access.PLAYBACK,
                    purpose="too late")
