"""Whole incidents deleted at either end of a device's chain in the back office's store are found by `bodycam
verify`: through the store's receipts, through the chain head the device publishes (``--head``), and through a
set that starts after seq 1 without the caller naming where it should start (``--first-seq``)."""

from __future__ import annotations

import json
import shutil

import pytest
from comms_env import wait_until

from agent.cli import main


@pytest.fixture
def store_of_three_incidents(world):
    device = world.device()
    incidents = [device.seal_random(2, size=20_000) for _ in range(3)]
    office = world.backoffice([device])
    world.uplink(device, office.receipt_pub)
    wait_until(lambda: not device.spool.pending() and not device.spool.acknowledged(), 30,
               what="every segment acknowledged and purged")
    return device, office, incidents


def remove(office, device, incident, receipts: bool) -> None:
    shutil.rmtree(office.store.device_dir(device.site, device.device_id) / incident[0].incident_id)
    if receipts:
        for sealed in incident:
            office.store.receipt_path(device.site, device.device_id, sealed.stem).unlink()


def verify(capsys, *args) -> tuple[int, str]:
    code = main(["verify", *map(str, args)])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("receipts_too", [False, True], ids=["segments", "segments-and-receipts"])
def test_a_store_with_its_newest_and_oldest_incidents_removed_fails_verify_head(store_of_three_incidents, capsys,
                                                                                receipts_too, tmp_path):
    device, office, (oldest, middle, newest) = store_of_three_incidents
    root, pub = office.store.root, device.device_pub
    chain = device.stage.sealer.chain
    head = f"{chain.seq}:{chain.manifest_sha256}"
    assert verify(capsys, root, "--devices", pub, "--head", head)[0] == 0  # untouched, it holds up

    remove(office, device, oldest, receipts_too)
    remove(office, device, newest, receipts_too)
    code, out = verify(capsys, root, "--devices", pub, "--head", head)
    assert code == 1, out
    assert (f"BAD  device {device.device_id}: seq {newest[0].seq}..{newest[-1].seq} missing after the newest "
            f"segment held ({middle[-1].stem})") in out
    if receipts_too:  # nothing in the store remembers the start: it is a finding unless the caller names it
        assert f"this set starts at seq {middle[0].seq}" in out
    else:  # the receipts remember every segment the store held
        for sealed in oldest + newest:
            assert f"BAD  {sealed.stem}: the store's receipt says it was stored" in out
    code, out = verify(capsys, root, "--devices", pub, "--first-seq", middle[0].seq,
                       "--head", f"{device.device_id}={chain.seq}")
    assert code == 1 and "missing after the newest segment held" in out
    assert ("this set starts at seq" in out) is False

    status = tmp_path / "status.json"  # what `bodycam status` or a telemetry message carries
    head_doc = {"seq": chain.seq, "manifest_sha256": chain.manifest_sha256}
    status.write_text(json.dumps({"device": device.device_id, "chain_head": head_doc}))
    code, out = verify(capsys, root, "--devices", pub, "--head", status, "--first-seq", middle[0].seq)
    assert code == 1 and f"seq {newest[0].seq}..{newest[-1].seq} missing after the newest" in out
