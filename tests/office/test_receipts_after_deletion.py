"""A deleted incident's receipts: they stay in the store (the device's proof that the office held its segments),
`bodycam verify` reads the deletion from the signed tombstone beside them, and a device that offers a segment
again after its incident was deleted gets its receipt back instead of an error it would retry for ever."""

from __future__ import annotations

import json

import pytest

from backoffice.receiver import Receiver
from backoffice.store import EvidenceStore
from comms import protocol
from comms.transfer import BytesSource, SegmentTransfer
from evidence.keys import generate_receipt_key, load_receipt_signing_key
from tests.evidence.conftest import cut

CHUNK = 8192
OFFER = protocol.up_topic("duisburg", "kod-07", "offer")
CHUNK_TOPIC = protocol.up_topic("duisburg", "kod-07", "chunk")


@pytest.fixture
def received(world, frames_30):
    """Incidents inc-1 and inc-2 sent through the real receiver into the world's store, cataloged by it."""
    rx = _cataloging_receiver(world)
    sealer = world.env.sealer()
    sealed = {}
    for name in ("inc-1", "inc-2"):
        sealed[name] = []
        for seg in cut(frames_30, name):
            s = sealer.seal(seg, clock_sync="ntp-synced")
            sealer.commit(s)
            assert _receipt(_deliver(rx, s))["stem"] == s.stem
            sealed[name].append(s)
    return rx, sealed


def _cataloging_receiver(world) -> Receiver:
    from backoffice.catalog.receiving import CatalogRecorder

    (world.root / "receipt-keys").mkdir()
    generate_receipt_key(world.root / "receipt-keys")
    rx = Receiver(EvidenceStore(world.store, world.root / "incoming"), world.env.devices,
                  load_receipt_signing_key(world.root / "receipt-keys" / "receipt.key"), "bo-recv-1",
                  max_segment_bytes=1 << 24, max_chunk_bytes=1 << 20)
    rx.on_stored = CatalogRecorder(world.office, world.env.devices)
    return rx


def _deliver(rx: Receiver, sealed, offer_only: bool = False) -> list:
    t = SegmentTransfer(sealed.stem, sealed.seq, sealed.ciphertext_sha256, sealed.ciphertext_bytes, CHUNK)
    t.loaded(BytesSource(sealed.ciphertext), sealed.manifest)
    replies = rx.handle(OFFER, t.offer().encode())
    if offer_only:
        return replies
    t.receiver_has(set())
    while (nxt := t.next_chunk()) is not None:
        replies += rx.handle(CHUNK_TOPIC, nxt[1])
    return replies


def _receipt(replies) -> dict:
    found = [r for r in replies if r.topic.endswith("/receipt")]
    assert len(found) == 1, replies
    return json.loads(found[0].payload)


def _receipts(world) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((world.store / "duisburg" / "kod-07" / ".receipts").iterdir())}


def _delete_inc_1_by_four_eyes(world):
    from backoffice.catalog.models import Incident

    decision = Incident.objects.get(incident_id="inc-1").propose_deletion(
        world.office, by=world.user("rita", "reviewer"), reason="recorded by mistake")
    decision.approve(world.office, by=world.user("sven", "supervisor"))


def test_the_receipts_of_a_deleted_incident_stay_and_verify_reads_the_deletion(world, received, capsys):
    from agent.cli import main as bodycam

    before = _receipts(world)
    assert len(before) == 6
    _delete_inc_1_by_four_eyes(world)
    assert _receipts(world) == before  # not one receipt gone or changed
    assert not list((world.store / "duisburg" / "kod-07" / "inc-1").glob("*.age"))

    keys = ["--devices", str(world.env.device / "device.pub"),
            "--receipt-key", str(world.root / "receipt-keys" / "receipt.pub")]
    assert bodycam(["verify", str(world.store), *keys, "--office-key", str(world.office_pub)]) == 0
    out = capsys.readouterr().out
    deleted = [line for line in out.splitlines() if line.startswith("DELETED")]
    assert len(deleted) == 1 and "incident inc-1 (3 segment(s)" in deleted[0]
    assert deleted[0].endswith("under rule 'early deletion, decision 1: recorded by mistake', approved by rita "
                               "and sven")
    assert "deleted on 2025-06-15T08:00:00+00:00" in deleted[0] and out.rstrip().endswith("0 problem(s) with the set")

    # without the office key the tombstone is not trusted: the receipts then say what is missing, and why
    assert bodycam(["verify", str(world.store), *keys]) == 1
    out = capsys.readouterr().out
    missing = [line for line in out.splitlines() if "missing or failed verification" in line and "receipt" in line]
    assert len(missing) == 3
    assert "--office-key office.pub" in out


def test_a_receipt_that_does_not_match_the_tombstone_is_a_finding(world, received):
    """The tombstone covers a receipt only for the very segment it names (manifest and ciphertext)."""
    from evidence.keys import load_office_public_key, load_receipt_public_key, load_receipt_signing_key
    from evidence.receipts import parse_receipt, sign_receipt
    from evidence.verify import verify_paths

    _delete_inc_1_by_four_eyes(world)
    rx, sealed = received
    path = world.store / "duisburg" / "kod-07" / ".receipts" / f"{sealed['inc-1'][0].stem}.receipt.json"
    r, _ = parse_receipt(path.read_bytes())
    path.write_bytes(sign_receipt(load_receipt_signing_key(world.root / "receipt-keys" / "receipt.key"),
                                  device_id=r.device_id, site=r.site, stem=r.stem, seq=r.seq,
                                  incident_id=r.incident_id, ciphertext_sha256="0" * 64,
                                  ciphertext_bytes=r.ciphertext_bytes, manifest_sha256=r.manifest_sha256,
                                  receiver_id=r.receiver_id, chain=r.chain, received_at=1.0e9))
    report = verify_paths([world.store], world.env.devices, office_key=load_office_public_key(world.office_pub),
                          receipt_key=load_receipt_public_key(world.root / "receipt-keys" / "receipt.pub"))
    assert not report.ok
    assert [p.stem for p in report.problems if p.kind == "receipt"] == [r.stem]


def test_a_segment_offered_again_after_its_incident_was_deleted_gets_its_receipt_back(world, received):
    """A device that never got a receipt (lost on the way) offers the segment again, maybe weeks later: the
    office held it and deleted it by its rule, so the stored receipt is the true answer -- the device may
    then purge it. Nothing is stored again, cataloged again or recorded as arriving after the deletion."""
    from backoffice.catalog.models import Segment

    rx, sealed = received
    _delete_inc_1_by_four_eyes(world)
    first = sealed["inc-1"][1]
    stored = (world.store / "duisburg" / "kod-07" / ".receipts" / f"{first.stem}.receipt.json").read_bytes()
    lines = world.log_path.read_bytes()
    replies = _deliver(rx, first, offer_only=True)
    assert [r.topic.rsplit("/", 1)[1] for r in replies] == ["receipt"], replies
    assert replies[0].payload == stored
    assert not list((world.store / "duisburg" / "kod-07" / "inc-1").glob("*.age"))
    assert not list((world.root / "incoming").rglob("offer.json"))
    assert Segment.objects.filter(stem=first.stem).count() == 1 and world.log_path.read_bytes() == lines


def test_a_receipt_without_its_segment_and_without_a_tombstone_is_still_an_error(world, received):
    """Files lost from the store (not deleted by a rule) are not papered over with the old receipt."""
    rx, sealed = received
    seg = sealed["inc-2"][0]
    (world.store / "duisburg" / "kod-07" / "inc-2" / f"{seg.stem}.manifest.json").unlink()
    replies = _deliver(rx, seg, offer_only=True)
    assert [json.loads(r.payload).get("code") for r in replies] == ["storage_error"], replies


def _verify(world, capsys) -> tuple[int, str]:
    from agent.cli import main as bodycam

    code = bodycam(["verify", str(world.store), "--devices", str(world.env.device / "device.pub"), "--receipt-key",
                    str(world.root / "receipt-keys" / "receipt.pub"), "--office-key", str(world.office_pub)])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("arrives", ["after the deletion", "while it is being deleted"])
def test_a_segment_stored_after_its_incident_was_deleted_goes_the_same_way(world, frames_30, capsys, arrives):
    """The device was offline past the retention period with its last segment: stored and receipted when it
    comes, then deleted by the next retention run under the same decision, and the tombstone accounts for it."""
    from backoffice.catalog.models import Incident, begin_deletions, finish_deletions
    from backoffice.catalog.retention import run_retention

    rx = _cataloging_receiver(world)
    sealer = world.env.sealer()
    sealed = []
    for seg in cut(frames_30, "inc-1"):
        sealed.append(sealer.seal(seg, clock_sync="ntp-synced"))
        sealer.commit(sealed[-1])
    for s in sealed[:2]:
        _receipt(_deliver(rx, s))
    if arrives == "after the deletion":
        _delete_inc_1_by_four_eyes(world)
        assert _receipt(_deliver(rx, sealed[2]))["stem"] == sealed[2].stem
    else:  # between the two halves of a deletion: the tombstone the run holds does not name it yet
        (tombstone,), _ = begin_deletions(world.office, [Incident.objects.get(incident_id="inc-1")],
                                          rule=lambda incident: "site duisburg: NW 14d", by=["retention timer"])
        assert _receipt(_deliver(rx, sealed[2]))["stem"] == sealed[2].stem
        finish_deletions(world.office, [tombstone])
    directory = world.store / "duisburg" / "kod-07" / "inc-1"
    assert (directory / sealed[2].ciphertext_name).exists()
    assert Incident.objects.get(incident_id="inc-1").state == Incident.DELETING
    code, out = _verify(world, capsys)  # until the run: a tombstone for 0..1 beside a segment that is not in it
    assert code == 1 and "incident inc-1: segment index 0..1 missing" in out

    run_retention(world.office)
    assert Incident.objects.get(incident_id="inc-1").state == Incident.DELETED
    assert not list(directory.glob("*.age")) and len(_receipts(world)) == 3
    code, out = _verify(world, capsys)
    assert code == 0 and out.rstrip().endswith("0 problem(s) with the set")
    assert "incident inc-1 (3 segment(s)" in next(line for line in out.splitlines() if line.startswith("DELETED"))
    # offered once more (its receipt was lost on the way): the stored receipt comes back, nothing is stored
    assert _receipt(_deliver(rx, sealed[2], offer_only=True))["stem"] == sealed[2].stem
    assert not (directory / sealed[2].ciphertext_name).exists()
