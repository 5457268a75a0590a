"""Signing in and out: argon2 hashes, a lockout per user name kept in the database, audit lines for each
login, failure, lockout and logout, and a ``next`` that never leaves the site."""

from __future__ import annotations

from datetime import timedelta

import pytest

from .conftest import PASSWORD, audit

LOGIN = "/login/"


@pytest.fixture
def quick_hashes(review):
    """The lockout tests hash many times: a fast hasher there (Argon2 itself is tested first, and in the
    browser test); the lockout does not depend on the hasher."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield review


def _person(world, name="rita", *roles):
    user = world.user(name, *(roles or ("reviewer",)))
    user.set_password(PASSWORD)
    user.save()
    return user


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_a_person_signs_in_with_an_argon2_hashed_password_and_it_is_audited(review):
    from django.test import Client

    user = _person(review)
    assert user.password.startswith("argon2$")
    client = Client()
    response = client.post(LOGIN, {"username": "rita", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert _signed_in(client)
    assert ("login", {"by": "rita", "via": "web 127.0.0.1"}) in audit(review)


def test_a_wrong_password_is_refused_counted_and_audited(review, quick_hashes):
    from django.test import Client

    from backoffice.web.models import LoginFailure

    _person(review)
    client = Client()
    response = client.post(LOGIN, {"username": "rita", "password": "wrong"})
    assert response.status_code == 200 and not _signed_in(client)
    assert "Benutzername oder Passwort ist falsch." in response.content.decode()
    assert LoginFailure.objects.filter(username="rita").count() == 1
    assert ("login_failed", {"username": "rita", "via": "web 127.0.0.1", "reason": "password", "failures": 1}) \
        in audit(review)


def test_five_failures_lock_the_name_for_fifteen_minutes_even_with_the_right_password(review, quick_hashes):
    from django.test import Client

    _person(review)
    client = Client()
    for _ in range(5):
        client.post(LOGIN, {"username": "rita", "password": "wrong"})
    locked = [f for e, f in audit(review) if e == "login_locked"]
    assert len(locked) == 1 and locked[0]["failures"] == 5
    assert locked[0]["until"] == (review.clock.now + timedelta(minutes=15)).isoformat()

    review.clock.now += timedelta(minutes=15) - timedelta(seconds=1)
    response = client.post(LOGIN, {"username": "rita", "password": PASSWORD})
    assert not _signed_in(client)
    assert "Zu viele Fehlversuche" in response.content.decode()
    assert audit(review)[-1] == ("login_failed", {"username": "rita", "via": "web 127.0.0.1", "reason": "locked",
                                                  "failures": 5})

    review.clock.now += timedelta(seconds=1)
    client.post(LOGIN, {"username": "rita", "password": PASSWORD})
    assert _signed_in(client)


def test_attempts_while_locked_do_not_extend_the_lock(review, quick_hashes):
    from django.test import Client

    from backoffice.web.models import LoginFailure

    _person(review)
    client = Client()
    for _ in range(5):
        client.post(LOGIN, {"username": "rita", "password": "wrong"})
    review.clock.now += timedelta(minutes=10)
    client.post(LOGIN, {"username": "rita", "password": "wrong"})  # refused unread, not counted
    assert LoginFailure.objects.filter(username="rita").count() == 5
    review.clock.now += timedelta(minutes=5)
    client.post(LOGIN, {"username": "rita", "password": PASSWORD})
    assert _signed_in(client)
    assert LoginFailure.objects.filter(username="rita").count() == 0  # a success clears the count


def test_unknown_names_are_locked_alike_so_a_lock_tells_nothing_about_accounts(review, quick_hashes):
    from django.test import Client

    client = Client()
    for _ in range(5):
        response = client.post(LOGIN, {"username": "ghost", "password": "x"})
    assert "Benutzername oder Passwort ist falsch." in response.content.decode()
    assert "Zu viele Fehlversuche" in client.post(LOGIN, {"username": "ghost", "password": "x"}).content.decode()
    assert [e for e, f in audit(review) if f.get("username") == "ghost"] == ["login_failed"] * 5 + ["login_locked",
                                                                                                   "login_failed"]


def test_other_names_are_not_affected_by_a_lock(review, quick_hashes):
    from django.test import Client

    _person(review, "sue", "supervisor")
    client = Client()
    for _ in range(5):
        client.post(LOGIN, {"username": "rita", "password": "wrong"})
    client.post(LOGIN, {"username": "sue", "password": PASSWORD})
    assert _signed_in(client)


def test_next_leads_back_within_the_site_only(review, quick_hashes):
    from django.test import Client

    _person(review)
    response = Client().post(LOGIN, {"username": "rita", "password": PASSWORD, "next": "/incidents/?site=a"})
    assert response["Location"] == "/incidents/?site=a"
    response = Client().post(LOGIN, {"username": "rita", "password": PASSWORD, "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_a_page_asks_for_login_and_returns_after_it(review):
    from django.test import Client

    response = Client().get("/incidents/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/incidents/"


def test_signing_out_needs_a_post_and_is_audited(review, quick_hashes):
    from django.test import Client

    _person(review)
    client = Client()
    client.post(LOGIN, {"username": "rita", "password": PASSWORD})
    assert client.get("/logout/").status_code == 405 and _signed_in(client)
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert not _signed_in(client)
    assert audit(review)[-1] == ("logout", {"by": "rita", "via": "web 127.0.0.1", "reason": "asked"})
    assert client.get("/").status_code == 302
