"""Playback through the review app and a real custodian: the purpose opens a playback access and its ticket,
the player page fetches the timeline and then each segment as an fMP4 piece, and every piece request is
checked again (the requester's own playback access, opened in this session, for an incident still there)
and is one ``segment_decrypted`` line in the audit log. A ticket near its end is renewed for the same access."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone

import av
import pytest

from .conftest import audit, cast, record, signed_in


@pytest.fixture
def played(review, frames_30, custody):
    """inc-1 (olga's, three segments); rita stated her purpose: (people, incident, rita's client, her access)."""
    from backoffice.catalog.models import Access

    people = cast(review)
    incident = record(review, "inc-1", frames_30)
    rita = signed_in(people["rita"])
    response = rita.post(f"/incidents/{incident.pk}/play/", {"purpose": "Beschwerde 12/2025"})
    access = Access.objects.get(kind=Access.PLAYBACK, user=people["rita"])
    assert response.status_code == 302 and response["Location"] == f"/playback/{access.pk}/"
    return people, incident, rita, access


def test_the_player_fetches_the_timeline_then_each_piece_and_each_is_logged(review, played):
    people, incident, rita, access = played
    page = rita.get(f"/playback/{access.pk}/").content.decode()
    assert re.search(rf'<video id="player" controls[^>]*data-timeline="/playback/{access.pk}/timeline.json"', page)
    assert '<script src="/static/web/player.js" defer>' in page and "<script>" not in page  # CSP: no inline script
    assert "Beschwerde 12/2025" in page
    timeline = rita.get(f"/playback/{access.pk}/timeline.json").json()
    stems = [s.stem for s in incident.segments.order_by("seq")]
    assert [s["stem"] for s in timeline["slots"]] == stems
    assert [s["url"] for s in timeline["slots"]] == [f"/playback/{access.pk}/pieces/{stem}.mp4" for stem in stems]
    starts = [s["start_s"] for s in timeline["slots"]]
    assert starts == sorted(starts) and starts[0] == 0
    assert timeline["duration_s"] == pytest.approx(1.0, abs=0.01)  # 30 frames at 30 fps

    for slot in timeline["slots"]:
        response = rita.get(slot["url"])
        assert response.status_code == 200
        assert response["Content-Type"] == 'video/mp4; codecs="avc1.42c00b"'
        assert response["Cache-Control"] == "no-store"
        data = response.content
        assert data[4:8] == b"ftyp" and b"moof" in data
        with av.open(io.BytesIO(data)) as container:
            first = next(container.decode(video=0)).time
        # appended at its offset, its first picture lands where the timeline puts the slot
        assert float(response["X-Timestamp-Offset"]) + first == pytest.approx(slot["start_s"], abs=1e-3)

    log = audit(review)
    decrypted = [f for e, f in log if e == "segment_decrypted"]
    assert [f["stem"] for f in decrypted] == stems
    assert {(f["access"], f["by"], f["kind"], f["purpose"]) for f in decrypted} == {
        (access.pk, "rita", "playback", "Beschwerde 12/2025")}
    assert [f["access"] for e, f in log if e == "ticket_issued"] == [access.pk]  # one ticket, still fresh


def test_every_piece_request_is_checked_and_a_refusal_is_recorded(review, played):
    people, incident, rita, access = played
    stem = incident.segments.order_by("seq").first().stem
    piece = f"/playback/{access.pk}/pieces/{stem}.mp4"
    assert rita.get(piece).status_code == 200
    # another supervisor who may watch, but with rita's access; the data-protection officer; rita signed in anew
    for client in (signed_in(people["sue"]), signed_in(people["dana"]), signed_in(people["rita"])):
        for url in (piece, f"/playback/{access.pk}/", f"/playback/{access.pk}/timeline.json"):
            assert client.get(url).status_code == 403, url
    refusals = [(f["by"], f["reason"]) for e, f in audit(review) if e == "access_refused"]
    assert [by for by, _ in refusals] == ["sue"] * 3 + ["dana"] * 3 + ["rita"] * 3
    assert "belongs to rita" in refusals[0][1] and "not opened in this session" in refusals[-1][1]
    # a stem that is not a segment of this incident, and a name that is no stem at all
    assert rita.get(f"/playback/{access.pk}/pieces/kod-07-0000000099.mp4").status_code == 404
    assert rita.get(f"/playback/{access.pk}/pieces/..%2Fetc.mp4").status_code == 404
    # once the incident is deleted, the access plays no more
    incident.delete_with_tombstone(review.office, rule="test", by=["rita", "sue"])
    assert rita.get(piece).status_code == 403
    assert [f["stem"] for e, f in audit(review) if e == "segment_decrypted"] == [stem]  # nothing else decrypted


def test_a_page_access_does_not_play(review, frames_30, custody):
    from backoffice.catalog.models import Access
    from backoffice.web import custody_link

    people = cast(review)
    incident = record(review, "inc-1", frames_30)
    rita = signed_in(people["rita"])
    rita.get(f"/incidents/{incident.pk}/")
    page = Access.objects.get(kind=Access.PAGE)
    session = rita.session  # even a page access smuggled into the session's tickets
    session[custody_link.SESSION_KEY] = {str(page.pk): "{}"}
    session.save()
    assert rita.get(f"/playback/{page.pk}/timeline.json").status_code == 403
    assert "not playback" in [f["reason"] for e, f in audit(review) if e == "access_refused"][0]


def test_a_ticket_near_its_end_is_renewed_for_the_same_access(review, frames_30, custody):
    from backoffice.catalog.models import Access

    people = cast(review)
    incident = record(review, "inc-1", frames_30)
    stems = [s.stem for s in incident.segments.order_by("seq")]
    now = datetime.now(timezone.utc)
    review.clock.now = now - timedelta(minutes=8)  # the purpose was stated 8 minutes ago: 2 minutes left
    rita = signed_in(people["rita"])
    rita.post(f"/incidents/{incident.pk}/play/", {"purpose": "Sichtung"})
    access = Access.objects.get(kind=Access.PLAYBACK)
    review.clock.now = now
    assert rita.get(f"/playback/{access.pk}/pieces/{stems[0]}.mp4").status_code == 200
    assert rita.get(f"/playback/{access.pk}/pieces/{stems[1]}.mp4").status_code == 200  # the new one is fresh
    issued = [f for e, f in audit(review) if e == "ticket_issued"]
    assert [f["access"] for f in issued] == [access.pk, access.pk]
    assert issued[1]["expires_at"] > issued[0]["expires_at"]
    assert len([e for e, _ in audit(review) if e == "access"]) == 1  # the same access, no new purpose asked


def test_without_the_custodian_playing_says_so_and_the_access_stays_recorded(review, frames_30, tmp_path):
    from django.test import override_settings

    people = cast(review)
    incident = record(review, "inc-1", frames_30)
    with override_settings(BODYCAM_CUSTODIAN_SOCKET=tmp_path / "nobody.sock"):
        for action in ("play", "export"):
            response = signed_in(people["rita"]).post(f"/incidents/{incident.pk}/{action}/", {"purpose": "Sichtung"})
            assert response.status_code == 503
            assert "Der Schlüsselverwahrer antwortet nicht" in response.content.decode()
    assert [f["kind"] for e, f in audit(review) if e == "access"] == ["playback", "export"]
    assert not [e for e, _ in audit(review) if e in ("ticket_issued", "segment_decrypted")]
