"""Catalog tests: a real database (SQLite here; PostgreSQL when DATABASE_URL names one, see
test_postgresql.py), migrated from empty once per process and emptied before each test (the ``db``
fixture, in tests/conftest.py, since the receiver's fault test uses it too); real sealed
segments in a real store layout; the office audit log signed with a real office key; an injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from evidence.keys import generate_office_key, load_device_public_keys
from tests.evidence.conftest import Env, cut, encode_h264, write_sealed

T0 = datetime(2025, 6, 15, 8, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    """A store with one enrolled device, the office key and log, people with roles, and a clock."""

    root: Path
    env: Env
    office: object
    clock: Clock

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def log_path(self) -> Path:
        return self.root / "audit" / "office-audit.jsonl"

    @property
    def office_pub(self) -> Path:
        return self.root / "keys" / "office.pub"

    def record_incident(self, incident_id: str, frames, officer: str | None = None) -> list:
        """Seal an incident's segments (naming ``officer``, as check-out does) where the receiver stores them."""
        return self.store_segments(cut(frames, incident_id), officer=officer)

    def store_segments(self, segments, officer: str | None = None) -> list:
        """Seal ``segments`` (of one incident) and put them where the receiver stores them."""
        from backoffice.store import incident_dir_name

        sealer = self.env.sealer()
        directory = self.store / self.env.site / self.env.device_id / incident_dir_name(segments[0].incident_id)
        out = []
        for seg in segments:
            sealed = sealer.seal(seg, clock_sync="ntp-synced", officer=officer)
            write_sealed(directory, sealed)
            sealer.commit(sealed)
            out.append(sealed)
        return out

    def ingest(self):
        from backoffice.catalog.ingest import reconcile

        return reconcile(self.office, load_device_public_keys([self.env.device / "device.pub"]))

    def user(self, name: str, *roles: str):
        from django.contrib.auth.models import Group, User

        user = User.objects.create(username=name)
        user.groups.add(*Group.objects.filter(name__in=roles))
        return user


@pytest.fixture(scope="session")
def frames_30():
    return encode_h264(30, wall_base=T0.timestamp())


@pytest.fixture
def world(db, tmp_path):
    from backoffice.catalog.office import open_office
    from evidence.keys import generate_device_key, generate_evidence_keys

    env = Env(root=tmp_path, keys=tmp_path / "municipality", escrow=tmp_path / "escrow",
              device=tmp_path / "device", state=tmp_path / "state", spool=tmp_path / "spool")
    for d in (env.keys, env.device, env.state, tmp_path / "keys"):
        d.mkdir()
    generate_evidence_keys(env.keys)
    generate_device_key(env.device, device_id=env.device_id)
    generate_office_key(tmp_path / "keys")
    clock = Clock(T0)
    office = open_office(tmp_path / "store", tmp_path / "keys" / "office.key",
                         tmp_path / "audit" / "office-audit.jsonl", clock=clock)
    yield World(tmp_path, env, office, clock)
    office.close()


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


@pytest.fixture
def office_settings(world, monkeypatch):
    """The commands' settings point at the world's store, office key and audit log (they open the log
    themselves; it is shared, so the world's own handle stays usable)."""
    from django.conf import settings

    monkeypatch.setattr(settings, "BODYCAM_STORE_DIR", world.store)
    monkeypatch.setattr(settings, "BODYCAM_OFFICE_KEY", world.root / "keys" / "office.key")
    monkeypatch.setattr(settings, "BODYCAM_AUDIT_LOG", world.log_path)
    return world
