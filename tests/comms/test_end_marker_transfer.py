"""An incident end marker (sealed at a restart) travels like a segment: offered, stored, signed for, purged."""

from __future__ import annotations

from comms_env import wait_until

from evidence.keys import load_device_public_keys
from evidence.verify import verify_paths


def test_an_end_marker_is_uploaded_stored_and_verified_at_the_back_office(world):
    device = world.device()
    sealed = device.seal_random(2, size=30_000, final_last=False)  # the agent died before the final segment
    device.close()
    device = world.device()  # the restart, on the same card: it seals the end marker first
    marker = device.stage.cut
    assert marker is not None and marker.seq == sealed[-1].seq + 1
    office = world.backoffice([device])
    world.uplink(device, office.receipt_pub)
    wait_until(lambda: not device.spool.pending() and not device.spool.acknowledged(), 30,
               what="segments and end marker acknowledged and purged")

    assert sorted(p.name for p in office.stored(".manifest.json")) == sorted(
        f"{s.stem}.manifest.json" for s in [*sealed, marker])
    assert office.store.read_receipt(device.site, device.device_id, marker.stem) is not None
    devices = load_device_public_keys([device.device_pub])
    report = verify_paths([office.store.root], devices)
    assert report.ok, report.lines()
    [cut] = report.cuts
    assert cut.stem == marker.stem and cut.incident_id == sealed[0].incident_id

