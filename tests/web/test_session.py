"""A session ends after 30 idle minutes and after 10 hours in any case (by the office clock), with an
audit line saying why; activity keeps an idle session alive."""

from __future__ import annotations

from datetime import timedelta

from .conftest import audit, signed_in


def test_an_idle_session_ends_after_thirty_minutes(review):
    client = signed_in(review.user("rita", "reviewer"))
    review.clock.now += timedelta(minutes=29, seconds=59)
    assert client.get("/").status_code == 200
    review.clock.now += timedelta(minutes=30)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/"
    assert audit(review)[-1] == ("logout", {"by": "rita", "via": "web 127.0.0.1", "reason": "idle"})
    assert "Ihre Sitzung ist abgelaufen" in client.get("/login/").content.decode()


def test_activity_keeps_a_session_but_not_beyond_ten_hours(review):
    client = signed_in(review.user("rita", "reviewer"))
    for _ in range(10 * 3 - 1):  # a request every 20 minutes for 9 h 40 min
        review.clock.now += timedelta(minutes=20)
        assert client.get("/").status_code == 200
    review.clock.now += timedelta(minutes=20)
    assert client.get("/").status_code == 302
    assert audit(review)[-1][1]["reason"] == "absolute"


def test_a_session_without_its_start_stamp_is_not_trusted(review):
    from backoffice.web.middleware import LOGIN_AT

    client = signed_in(review.user("rita", "reviewer"))
    session = client.session
    del session[LOGIN_AT]
    session.save()
    assert client.get("/").status_code == 302
