"""A segment with sound (format /2) travels like any segment: offered, stored, signed for, verified."""

from __future__ import annotations

from comms_env import clock_sync_state, wait_until

from camera.frames import AudioPacket
from camera.segmenter import Segmenter
from camera.synthetic import SyntheticSource
from evidence.keys import load_device_public_keys
from evidence.seal import FORMAT_AV, Manifest
from evidence.verify import verify_paths


def test_segments_with_sound_are_uploaded_stored_and_verified_at_the_back_office(world):
    source = SyntheticSource(160, 120, 30.0, 300_000, 30, realtime=False, audio_bitrate=48_000)
    segments = []
    segmenter = Segmenter(source.info, 2.0, segments.append, audio=source.audio)
    segmenter.begin("20260101T000000Z-a1b2c3")
    for item in source.media(150):
        if isinstance(item, AudioPacket):
            segmenter.add_audio(item)
        elif segmenter.active:
            if item.seq == 120:
                segmenter.end()
            else:
                segmenter.add(item)
        else:
            segmenter.advance(item.pts_us)
    assert len(segments) == 2 and all(s.audio for s in segments)
    device = world.device()
    sealed = []
    for segment in segments:
        s = device.stage.sealer.seal(segment, clock_sync=clock_sync_state())
        device.spool.store(s)
        device.stage.sealer.commit(s)
        sealed.append(s)
    office = world.backoffice([device])
    world.uplink(device, office.receipt_pub)
    wait_until(lambda: not device.spool.pending() and not device.spool.acknowledged(), 30,
               what="segments with sound acknowledged and purged")
    stored = sorted(office.stored(".manifest.json"))
    assert [p.name for p in stored] == sorted(f"{s.stem}.manifest.json" for s in sealed)
    assert all(Manifest.parse(p.read_bytes()).format == FORMAT_AV for p in stored)
    report = verify_paths([office.store.root], load_device_public_keys([device.device_pub]))
    assert report.ok, report.lines()
