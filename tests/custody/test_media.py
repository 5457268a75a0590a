"""Playback media: each segment from the custodian becomes a fragmented MP4 that decodes, with its place on the
incident's timeline and its MediaSource type read from the stream; in real Chromium, Media Source Extensions
play a whole incident with sound from these pieces to its end."""

from __future__ import annotations

import base64
import io
import json

import av
import pytest

from tests.evidence.conftest import FRAME_US


def _played(world, custodian, name: str):
    """(IncidentMedia, media segments) of incident ``name``, through a reviewer's playback ticket."""
    from backoffice.catalog.models import Access, Incident
    from backoffice.custody.client import CustodianClient
    from backoffice.custody.media import IncidentMedia
    from backoffice.custody.ticket import issue_ticket

    inc = Incident.objects.get(incident_id=name)
    access = Access.open(world.office, user=world.user(f"rita-{name}", "reviewer"), incident=inc,
                         kind=Access.PLAYBACK, purpose="Sichtung")
    ticket = issue_ticket(world.office, access)
    media = IncidentMedia.from_store(world.store / inc.store_path, stems=[s.stem for s in inc.segments.order_by("seq")])
    client = CustodianClient(custodian.socket)
    pieces = []
    for slot in media.slots:
        with client.open_segment(ticket, slot.stem) as stream:
            pieces.append(media.media_segment(slot.stem, stream))
    return media, pieces


@pytest.fixture
def both_formats(world, frames_30, sound_segments):
    """inc-v1: three segments of pictures only (format 1); inc-av: three with sound (format 2)."""
    world.record_incident("inc-v1", frames_30)
    world.store_segments(sound_segments)
    world.ingest()


def _decoded(data: bytes) -> tuple[list[float], int]:
    """(picture times, decoded sound samples) of an MP4."""
    with av.open(io.BytesIO(data)) as c:
        times = [f.time for f in c.decode(video=0)]
    samples = 0
    with av.open(io.BytesIO(data)) as c:
        if c.streams.audio:
            samples = sum(f.samples for f in c.decode(audio=0))
    return times, samples


def test_each_segment_plays_alone_at_its_place_on_the_timeline(world, both_formats, custodian):
    media, pieces = _played(world, custodian, "inc-v1")
    assert [p.mime for p in pieces] == ['video/mp4; codecs="avc1.42c00b"'] * 3  # Constrained Baseline, level 1.1
    assert [p.start_s for p in pieces] == pytest.approx([0, 10 * FRAME_US / 1e6, 20 * FRAME_US / 1e6])
    assert media.duration_s == pytest.approx(30 * FRAME_US / 1e6)
    for p in pieces:
        assert p.data[4:8] == b"ftyp" and b"moof" in p.data
        times, samples = _decoded(p.data)
        assert len(times) == 10 and samples == 0
        # appended at timestampOffset, its first picture lands on the segment's start
        assert p.timestamp_offset_s + times[0] == pytest.approx(p.start_s, abs=1e-4)

    media, pieces = _played(world, custodian, "inc-av")
    assert [p.mime for p in pieces] == ['video/mp4; codecs="avc1.42c00c,mp4a.40.2"'] * 3  # AAC-LC
    frames = [m.frame_count for m in (s.manifest for s in media.slots)]
    for p, count in zip(pieces, frames):
        times, samples = _decoded(p.data)
        assert len(times) == count and samples > 0
        assert p.timestamp_offset_s + times[0] == pytest.approx(p.start_s, abs=1e-4)
    assert media.slot_at(0).stem == pieces[0].stem and media.slot_at(media.duration_s - 0.01).stem == pieces[-1].stem
    assert media.slot_at(pieces[1].start_s + 0.001).stem == pieces[1].stem


def test_a_plaintext_that_is_not_the_segment_is_refused(world, both_formats, custodian):
    from backoffice.custody.media import IncidentMedia, MediaError

    inc_dir = world.store / "duisburg" / "kod-07" / "inc-v1"
    media = IncidentMedia.from_store(inc_dir)
    with pytest.raises(MediaError, match="manifest says"):
        media.media_segment(media.stems[0], b"\x00\x00\x00\x01garbage")
    with pytest.raises(MediaError, match="not a video segment"):
        media.media_segment("kod-07-0000000099", b"")


_PLAYER = """
<!doctype html><video id="v" muted></video>
<script>
window.play = async (pieces) => {
  const video = document.getElementById('v');
  const source = new MediaSource();
  video.src = URL.createObjectURL(source);
  await new Promise(r => source.addEventListener('sourceopen', r, {once: true}));
  const buffer = source.addSourceBuffer(pieces[0].mime);
  for (const p of pieces) {
    buffer.timestampOffset = p.offset;
    buffer.appendBuffer(Uint8Array.from(atob(p.data), c => c.charCodeAt(0)));
    await new Promise((r, e) => { buffer.onupdateend = r; buffer.onerror = e; });
  }
  source.endOfStream();
  video.playbackRate = 4;
  await video.play();
  await new Promise(r => video.addEventListener('ended', r, {once: true}));
  const q = video.getVideoPlaybackQuality();
  return {time: video.currentTime, duration: source.duration, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
          audio: video.webkitAudioDecodedByteCount, error: video.error && video.error.message,
          ranges: Array.from({length: video.buffered.length}, (_, i) => [video.buffered.start(i), video.buffered.end(i)])};
};
</script>
"""


@pytest.mark.system
def test_chromium_plays_the_pieces_through_media_source_extensions_to_the_end(world, both_formats, custodian):
    from playwright.sync_api import sync_playwright

    prepared = {name: _played(world, custodian, name) for name in ("inc-v1", "inc-av")}  # Django: not in Playwright's loop
    results = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page()
            page.route("http://bodycam.test/", lambda route: route.fulfill(body=_PLAYER, content_type="text/html"))
            page.goto("http://bodycam.test/")
            for name, (media, pieces) in prepared.items():
                payload = [{"mime": p.mime, "offset": p.timestamp_offset_s,
                            "data": base64.b64encode(p.data).decode("ascii")} for p in pieces]
                results[name] = (media, page.evaluate("pieces => window.play(pieces)", payload))
        finally:
            browser.close()
    for name, (media, played) in results.items():
        print(name, json.dumps(played))
        assert played["error"] is None
        assert len(played["ranges"]) == 1  # one gapless stretch from the first piece to the last
        assert played["ranges"][0][0] == pytest.approx(0, abs=0.05)
        assert played["time"] == pytest.approx(media.duration_s, abs=0.1)
        assert played["frames"] >= sum(s.manifest.frame_count for s in media.slots) - 2
    assert results["inc-v1"][1]["audio"] == 0 and results["inc-av"][1]["audio"] > 0
