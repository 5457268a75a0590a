"""The receiver's catalog: each stored segment recorded before its receipt, the store reconciled at start."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest

from base.canonical import canonical_json
from evidence.keys import generate_receipt_key, load_device_public_keys
from evidence.seal import Manifest
from tests.evidence.conftest import cut


class Unconnected:
    """Stands in for the MQTT link, which this test never starts."""

    def add_listener(self, *args, **kwargs):
        pass


def _manifests(world, sealed) -> list[Manifest]:
    return [Manifest.parse(s.manifest) for s in sealed]


def test_the_recorder_catalogs_a_stored_segment_once_with_its_signature_checked(world, frames_30):
    from backoffice.catalog.models import Segment
    from backoffice.catalog.receiving import CatalogRecorder

    sealed = world.record_incident("inc-1", frames_30)
    recorder = CatalogRecorder(world.office, load_device_public_keys([world.env.device / "device.pub"]))
    for m in _manifests(world, sealed) * 2:  # a re-offer after a lost receipt calls it again
        recorder([m])
    assert Segment.objects.count() == 3 and {s.verification for s in Segment.objects.all()} == {"verified"}
    assert world.ingest().added == 0  # the reconciliation agrees: same paths, nothing missing
    lines = [json.loads(x) for x in world.log_path.read_text().splitlines()]
    assert [x["event"] for x in lines].count("segment_cataloged") == 3


def test_the_recorder_trusts_the_receivers_check_and_the_reconciliation_checks_itself(world, frames_30,
                                                                                      monkeypatch):
    """The receiver stores only a manifest that verified with an enrolled key, so its recorder does not
    verify again; the reconciliation reads manifests from disk and does, so a forged one reads 'failed'."""
    from backoffice.catalog import ingest
    from backoffice.catalog.models import Segment
    from backoffice.catalog.receiving import CatalogRecorder

    first, second = _manifests(world, world.record_incident("inc-1", frames_30))[:2]
    calls = []
    checking = ingest.verify_manifest
    monkeypatch.setattr(ingest, "verify_manifest", lambda *a: calls.append(a) or checking(*a))
    CatalogRecorder(world.office, world.env.devices)([first])
    assert calls == [] and Segment.objects.get(stem=first.stem).verification == "verified"

    path = world.store / first.site / first.device_id
    [forged] = [p for p in path.glob(f"*/{second.stem}.manifest.json")]
    doc = json.loads(forged.read_bytes())
    signature = bytearray(base64.b64decode(doc["signature"]))
    signature[0] ^= 1  # still a manifest, not signed by the device
    doc["signature"] = base64.b64encode(signature).decode()
    forged.write_bytes(canonical_json(doc) + b"\n")
    assert world.ingest().added == 2
    assert len(calls) == 2  # the two segments it found missing
    assert Segment.objects.get(stem=second.stem).verification == "failed"
    assert Segment.objects.exclude(stem=second.stem).filter(verification="verified").count() == 2


def test_the_recorder_replaces_a_connection_that_was_closed_under_it(world, frames_30, monkeypatch):
    """The acknowledger's connection lives as long as the receiver; one the server closed meanwhile (a
    restart) costs a new connection, not a withheld receipt, and is not checked before every batch."""
    from django.db import connection

    from backoffice.catalog.models import Segment
    from backoffice.catalog.receiving import CatalogRecorder

    first, second = _manifests(world, world.record_incident("inc-1", frames_30))[:2]
    recorder = CatalogRecorder(world.office, world.env.devices)
    recorder.open()
    probes = []
    usable = connection.is_usable
    # Django's health check asks is_usable() (on PostgreSQL a SELECT 1 on the raw connection, which no query
    # log sees); counted here on either database.
    monkeypatch.setattr(connection, "is_usable", lambda: probes.append(1) or usable())
    recorder([first])
    assert probes == []  # no health probe before the batch
    stale = connection.connection
    stale.close()  # behind Django's back, as a server that went away leaves it
    recorder([second])
    assert connection.connection is not stale
    assert set(Segment.objects.values_list("stem", flat=True)) == {first.stem, second.stem}


def test_a_catalog_failure_becomes_a_store_error_so_the_receipt_is_withheld(world, frames_30, monkeypatch):
    from django.db import DatabaseError

    from backoffice.catalog import receiving
    from backoffice.store import StoreError

    sealed = world.record_incident("inc-1", frames_30)

    def down(*args, **kwargs):
        raise DatabaseError("could not connect to server")

    monkeypatch.setattr(receiving, "record_segments", down)
    with pytest.raises(StoreError, match="could not be recorded"):
        receiving.CatalogRecorder(world.office, {})(_manifests(world, sealed)[:1])


def test_a_receiver_with_catalog_on_reconciles_the_store_at_start(world, frames_30, monkeypatch):
    from django.conf import settings

    from backoffice.catalog.models import Incident
    from backoffice import receiver_cli
    from backoffice.settings import loads_receiver_config

    monkeypatch.setattr(settings, "BODYCAM_OFFICE_KEY", world.root / "keys" / "office.key")
    monkeypatch.setattr(settings, "BODYCAM_AUDIT_LOG", world.log_path)
    monkeypatch.setattr(receiver_cli, "receiver_link", lambda *args: Unconnected())  # no broker needed here
    world.office.close()
    world.record_incident("inc-1", frames_30)  # stored before a crash, never cataloged
    generate_receipt_key(world.root / "keys")
    cfg = loads_receiver_config(f"""
[receiver]
store_dir = "{world.store}"
incoming_dir = "{world.root / 'incoming'}"
devices = ["{world.env.device / 'device.pub'}"]
receipt_key = "{world.root / 'keys' / 'receipt.key'}"
catalog = true
[mqtt]
host = "127.0.0.1"
port = 1
""")
    service = receiver_cli.ReceiverService(cfg)
    try:
        assert service.receiver.on_stored is not None
        service.reconcile_catalog()
    finally:
        service.office.close()
    assert Incident.objects.get(incident_id="inc-1").segments.count() == 3


def test_a_segment_of_a_known_incident_is_recorded_in_three_statements(world, frames_30):
    """The receiver pays each of these before its receipt, on every segment: the incident (locked, with the
    site whose rule sets the expiry) in one look-up, the segment's insert (which skips one the catalog holds
    already), the incident's update."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from backoffice.catalog.models import Segment
    from backoffice.catalog.receiving import CatalogRecorder

    first, *rest = _manifests(world, world.store_segments(cut(frames_30, "inc-1", pre_event_frames=4)))
    recorder = CatalogRecorder(world.office, load_device_public_keys([world.env.device / "device.pub"]))
    recorder([first])
    with CaptureQueriesContext(connection) as queries:
        recorder([rest[0]])
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    transaction = {"BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"}
    assert [s for s in statements if s not in transaction] == ["SELECT", "INSERT", "UPDATE"], statements
    incident = Segment.objects.get(stem=rest[0].stem).incident
    assert incident.segments.count() == 2
    assert incident.end == datetime.fromisoformat(rest[0].end_time.replace("Z", "+00:00"))
    # The narrower UPDATE still writes what the segment adds: the frames behind the pre-event share.
    assert incident.frame_count == first.frame_count + rest[0].frame_count > 0
    assert incident.pre_event_frames == first.pre_event_frames + rest[0].pre_event_frames == 4


def test_a_batch_of_segments_is_recorded_in_the_statements_of_one(world, frames_30):
    """The acknowledger hands the catalog a few segments at once: one transaction, one audit write and the
    same three statements, whatever their number; the incident grows by all of them, once each."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from backoffice.catalog.models import Incident
    from backoffice.catalog.receiving import CatalogRecorder

    manifests = _manifests(world, world.store_segments(cut(frames_30, "inc-1", pre_event_frames=4)))
    assert len(manifests) == 3
    recorder = CatalogRecorder(world.office, load_device_public_keys([world.env.device / "device.pub"]))
    recorder(manifests[:1])
    log_before = world.log_path.read_text().count("\n")
    with CaptureQueriesContext(connection) as queries:
        recorder(manifests[1:] + manifests[1:2])  # with a duplicate: a re-offer that raced the first
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    transaction = {"BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"}
    assert [s for s in statements if s not in transaction] == ["SELECT", "INSERT", "UPDATE"], statements
    incident = Incident.objects.get(incident_id="inc-1")
    assert sorted(incident.segments.values_list("stem", flat=True)) == sorted(m.stem for m in manifests)
    assert incident.frame_count == sum(m.frame_count for m in manifests)
    assert incident.end == datetime.fromisoformat(manifests[-1].end_time.replace("Z", "+00:00"))
    lines = [json.loads(x) for x in world.log_path.read_text().splitlines()[log_before:]]
    assert [(x["event"], x["fields"]["stem"]) for x in lines] == [("segment_cataloged", m.stem) for m in manifests[1:]]


def test_a_batch_spanning_incidents_records_each_segment_in_its_own(world, frames_30):
    from backoffice.catalog.ingest import record_segments
    from backoffice.catalog.models import Incident
    from backoffice.catalog.receiving import incident_path

    one = _manifests(world, world.store_segments(cut(frames_30, "inc-1")))
    two = _manifests(world, world.store_segments(cut(frames_30, "inc-2")))
    batch = [one[0], two[0], one[1], two[1], two[2], one[2]]
    added = record_segments(world.office, [(m, incident_path(m)) for m in batch], world.env.devices)
    assert added == [True] * 6
    for name, manifests in (("inc-1", one), ("inc-2", two)):
        incident = Incident.objects.get(incident_id=name)
        assert sorted(incident.segments.values_list("stem", flat=True)) == sorted(m.stem for m in manifests)
        assert incident.frame_count == sum(m.frame_count for m in manifests)
    assert record_segments(world.office, [(m, incident_path(m)) for m in batch], world.env.devices) == [False] * 6


def test_a_batch_with_a_segment_the_catalog_holds_adds_only_the_new_one(world, frames_30):
    """A re-offer after a lost receipt can share a batch with a new segment: the held one is skipped by the
    insert itself, and neither its frames nor its audit line count twice."""
    from backoffice.catalog.ingest import record_segments
    from backoffice.catalog.models import Incident
    from backoffice.catalog.receiving import incident_path

    manifests = _manifests(world, world.store_segments(cut(frames_30, "inc-1")))
    assert record_segments(world.office, [(manifests[0], incident_path(manifests[0]))], world.env.devices) == [True]
    log_before = world.log_path.read_text().count("\n")
    batch = [manifests[1], manifests[0]]
    assert record_segments(world.office, [(m, incident_path(m)) for m in batch], world.env.devices) == [True, False]
    incident = Incident.objects.get(incident_id="inc-1")
    assert incident.frame_count == manifests[0].frame_count + manifests[1].frame_count
    assert incident.segments.count() == 2
    lines = [json.loads(x) for x in world.log_path.read_text().splitlines()[log_before:]]
    assert [(x["event"], x["fields"]["stem"]) for x in lines] == [("segment_cataloged", manifests[1].stem)]


def test_opening_the_recorder_connects_its_thread_and_reports_a_database_it_cannot_reach(world, monkeypatch):
    from django.db import DatabaseError, connection
    from django.test.utils import CaptureQueriesContext

    from backoffice.catalog import receiving
    from backoffice.catalog.ingest import record_segments
    from backoffice.store import StoreError

    recorder = receiving.CatalogRecorder(world.office, {})
    with CaptureQueriesContext(connection) as queries:
        recorder.open()
        assert record_segments(world.office, [], {}) == []  # an empty batch asks nothing (and locks nothing)
    assert connection.connection is not None and len(queries.captured_queries) == 1

    def down():
        raise DatabaseError("connection to server at 127.0.0.1, port 1 failed: Connection refused")

    monkeypatch.setattr(receiving, "close_old_connections", down)
    with pytest.raises(StoreError, match="cannot be reached"):
        recorder.open()


def test_lines_written_many_at_once_name_where_they_come_from_as_single_lines_do(world):
    """A command's office stamps ``via`` on every line, also on those a step writes together (a retention
    run's, the acknowledger's); a line that names its own keeps it."""
    from backoffice.catalog.office import open_office

    office = open_office(world.store, world.root / "keys" / "office.key", world.log_path, via="cli:root")
    with office.log:
        office.record("hold_placed", hold=1)
        office.record_many([("incident_deleted", {"tombstone": 1}), ("access", {"via": "web 10.0.0.5"})])
    lines = [json.loads(x) for x in world.log_path.read_text().splitlines()]
    assert [(x["event"], x["fields"]["via"]) for x in lines[-3:]] == [
        ("hold_placed", "cli:root"), ("incident_deleted", "cli:root"), ("access", "web 10.0.0.5")]
