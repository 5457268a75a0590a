"""Review app tests: the Django test client (and real Chromium, test_browser.py) against the real catalog
database, real sealed segments in a real store, the office's signed audit log and an injected clock (the
catalog's ``world``, tests/office/conftest.py).
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from base.utctime import iso_utc
from tests.custody import conftest as custody_conftest
from tests.evidence.conftest import cut, encode_h264, write_sealed
from tests.office.conftest import T0, Clock, World, frames_30, office_settings, world  # noqa: F401  (fixtures reused)

# the custody tests' fixtures: a short directory for the custodian's socket, an incident with sound
socket_dir = custody_conftest.socket_dir
sound_segments = custody_conftest.sound_segments

PASSWORD = "Sichtung-Test-2025!"

#: The cast of the permission table: name -> roles ("olga" owns the incidents recorded by :func:`record`).
CAST = {"nora": (), "olga": ("officer",), "otto": ("officer",), "rita": ("reviewer",), "sue": ("supervisor",),
        "sam": ("supervisor",), "dana": ("data-protection",), "adam": ("admin",)}


@pytest.fixture
def review(world):
    """The review app answering the test client, with the world's office (its clock and audit log)."""
    from django.test import override_settings

    from backoffice.web import office_link

    with override_settings(ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"]), \
            office_link.using(world.office):
        yield world


@pytest.fixture
def custody(review, socket_dir):
    """A real custodian process (tests/custody) for the review app, for the world's keys (:func:`custodian_for`)."""
    with custodian_for(review, socket_dir) as custodian:
        yield custodian


@contextmanager
def custodian_for(review, socket_dir, *, identity=None, devices=(), receipt_pub=None, env=None):
    """A custodian process and the review app's settings pointing at it: its socket, the enrolled devices (the
    world's and ``devices``), the receipt key (none unless given). The office clock is set to now, so that the
    custodian, which reads the real clock, accepts the tickets."""
    from django.test import override_settings

    review.clock.now = datetime.now(timezone.utc)
    enrolled = review.root / "enrolled"
    enrolled.mkdir(exist_ok=True)
    for i, pub in enumerate([review.env.device / "device.pub", *devices]):
        (enrolled / f"device-{i}.pub").write_bytes(pub.read_bytes())
    custodian = custody_conftest.CustodianProcess(review, socket_dir, identity=identity, devices=devices, env=env)
    custodian.start()
    try:
        with override_settings(BODYCAM_CUSTODIAN_SOCKET=custodian.socket, BODYCAM_OFFICE_DEVICES=enrolled,
                               BODYCAM_RECEIPT_PUB=receipt_pub or review.root / "no-receipt.pub"):
            yield custodian
    finally:
        custodian.stop()


def cast(world, *, passwords: bool = False) -> dict:
    """The people of :data:`CAST` (with :data:`PASSWORD` when ``passwords``; argon2 makes that slow)."""
    people = {}
    for name, roles in CAST.items():
        user = world.user(name, *roles)
        if passwords:
            user.set_password(PASSWORD)
            user.save()
        people[name] = user
    return people


def record(world, incident_id: str, frames, *, officer: str = "olga", pre_event_frames: int = 0,
           drop: tuple[int, ...] = (), final: bool = True, restart: bool = False):
    """Seal ``frames`` as an incident (segments of ten frames), store all but the ``drop``ped segment
    indexes, optionally end it with a restart's end marker, catalog it; the Incident."""
    from backoffice.catalog.models import Incident
    from backoffice.store import incident_dir_name

    sealer = world.env.sealer()
    directory = world.store / world.env.site / world.env.device_id / incident_dir_name(incident_id)
    segments = cut(frames, incident_id, final=final and not restart, pre_event_frames=pre_event_frames)
    for seg in segments:
        sealed = sealer.seal(seg, clock_sync="ntp-synced")
        if seg.index not in drop:
            write_sealed(directory, sealed)
        sealer.commit(sealed)
    if restart:
        last = segments[-1].frames[-1]
        marker = sealer.seal_end_marker(incident_id=incident_id, segment_index=len(segments),
                                        last_frame_time=iso_utc(last.wall_time + 1 / 30), reason="restart",
                                        clock_sync="ntp-synced")
        write_sealed(directory, marker)
        sealer.commit(marker)
    world.ingest()
    incident = Incident.objects.get(incident_id=incident_id)
    incident.officer = officer
    incident.save(update_fields=["officer"])
    return incident


def frames_at(seconds_after_t0: float, count: int = 30, *, every: float = 1 / 30):
    """``count`` frames starting that long after T0, captured ``every`` seconds (30 fps unless told;
    a slower clock gives segments of a realistic length for the pages, with the same small pictures)."""
    base = (T0 + timedelta(seconds=seconds_after_t0)).timestamp()
    return [dataclasses.replace(f, wall_time=base + i * every) for i, f in enumerate(encode_h264(count))]


def audit(world) -> list[tuple[str, dict]]:
    """The office audit log's lines as (event, fields)."""
    if not world.log_path.exists():
        return []
    return [(d["event"], d["fields"]) for d in map(json.loads, world.log_path.read_text().splitlines())]


def signed_in(user):
    """A test client signed in as ``user`` (a session like a login makes, without the password)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client
