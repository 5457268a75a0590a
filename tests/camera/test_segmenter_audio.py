"""The segmenter gives every audio packet to exactly one segment, by time, whatever order they arrive in."""

import pytest

from camera.frames import AudioInfo, AudioPacket, EncodedFrame, StreamInfo
from camera.ring import PreEventRing
from camera.segmenter import AUDIO_WAIT_US, Segmenter, missing_us
from camera.synthaudio import time_of

FPS = 30
STREAM = StreamInfo("h264", 160, 120, float(FPS), 300_000, FPS, "test")
AUDIO = AudioInfo("aac", 48_000, 1, 48_000, 1024, b"\x11\x88", "test")
FRAME_US = AUDIO.frame_us


def frame(n: int) -> EncodedFrame:
    return EncodedFrame(b"v" * 100, round(n * 1_000_000 / FPS), n % FPS == 0, 1000 + n / FPS, n)


def packet(k: int) -> AudioPacket:
    start = time_of(k * 1024)
    return AudioPacket(b"a" * 40, start, time_of((k + 1) * 1024) - start, k)


def arrivals(frames: int, lag_packets: int = 3, skip=()):
    """Frames 0..frames-1 and the packets of the same time, in the order an encoder delivers them:
    each packet ``lag_packets`` audio frames after its end (AAC holds a frame or two)."""
    items = [(frame(n).pts_us, 0, frame(n)) for n in range(frames)]
    end = frame(frames - 1).pts_us
    k = 0
    while packet(k).pts_us < end + AUDIO_WAIT_US // 2:
        if k not in skip:
            items.append((packet(k).end_us + lag_packets * FRAME_US, 1, packet(k)))
        k += 1
    return [item for _, _, item in sorted(items, key=lambda t: (t[0], t[1]))]


def feed(segmenter: Segmenter, items, start_at=0, stop_at=None):
    """Record from frame ``start_at`` to (excluding) ``stop_at``; the rest as standby would see it."""
    recording = False
    for item in items:
        if isinstance(item, EncodedFrame):
            if item.seq == start_at and not recording and not segmenter.active:
                segmenter.begin("inc")
                recording = True
            if recording and stop_at is not None and item.seq == stop_at:
                segmenter.end()
                recording = False
            if recording:
                segmenter.add(item)
            else:
                segmenter.advance(item.pts_us)
        else:
            segmenter.add_audio(item)
    if recording:
        segmenter.end()


def check_partition(segments):
    """Spans follow each other; each packet starts inside its segment's span; none twice."""
    for a, b in zip(segments, segments[1:]):
        assert a.audio_until_us == b.audio_from_us
    for s in segments:
        assert all(s.audio_from_us <= p.pts_us < s.audio_until_us for p in s.audio)
        assert [p.seq for p in s.audio] == sorted(p.seq for p in s.audio)
    seqs = [p.seq for s in segments for p in s.audio]
    assert len(seqs) == len(set(seqs))
    return seqs


def test_every_packet_of_the_incident_is_in_exactly_one_segment_and_spans_meet_at_the_cuts():
    segments = []
    seg = Segmenter(STREAM, 2.0, segments.append, audio=AUDIO)
    feed(seg, arrivals(200), start_at=0, stop_at=185)
    assert [s.start_pts_us for s in segments] == [frame(n).pts_us for n in (0, 60, 120, 180)]
    assert segments[-1].final and not any(s.final for s in segments[:-1])
    seqs = check_partition(segments)
    assert segments[0].audio_preroll is None  # the recording began with the stream: nothing before it
    assert all(b.audio_preroll is a.audio[-1] for a, b in zip(segments, segments[1:]))
    end_us = segments[-1].end_pts_us
    assert seqs == [k for k in range(400) if 0 <= packet(k).pts_us < end_us]
    for a, b in zip(segments, segments[1:]):
        assert a.audio_until_us == b.start_pts_us  # a span ends at the next segment's first picture
    assert segments[-1].audio_until_us == end_us
    assert all(s.audio_missing_us == 0 for s in segments)
    video_us = end_us - segments[0].start_pts_us
    audio_us = sum(s.audio_duration_us for s in segments)
    print(f"video {video_us} µs, audio {audio_us} µs over {len(segments)} segments")
    assert abs(audio_us - video_us) <= FRAME_US


def test_a_closed_segment_waits_for_the_sound_of_its_span_then_leaves_in_order():
    segments = []
    seg = Segmenter(STREAM, 2.0, segments.append, audio=AUDIO)
    seg.begin("inc")
    for n in range(61):
        seg.add(frame(n))  # frame 60 cuts segment 0 at 2 s; no sound has come yet
    assert segments == [] and seg.waiting == 1
    k = 0
    while packet(k).end_us < frame(60).pts_us:
        seg.add_audio(packet(k))
        k += 1
    assert segments == []  # the packet across the cut has not arrived: more sound may be due
    seg.add_audio(packet(k))
    assert len(segments) == 1 and segments[0].audio[-1].seq == k - 1 + (packet(k).pts_us < frame(60).pts_us)


def test_a_segment_whose_sound_never_comes_leaves_after_the_wait_and_declares_it_missing():
    segments = []
    seg = Segmenter(STREAM, 2.0, segments.append, audio=AUDIO)
    seg.begin("inc")
    for n in range(30):
        seg.add(frame(n))
    for k in range(20):  # the microphone gives up after 20 packets
        seg.add_audio(packet(k))
    seg.end()
    assert segments == []
    until = frame(29).pts_us + round(1e6 / FPS)
    n = 30
    while not segments and n < 200:
        seg.advance(frame(n).pts_us)
        n += 1
    assert len(segments) == 1
    assert frame(n - 2).pts_us < until + AUDIO_WAIT_US <= frame(n - 1).pts_us  # not a picture earlier
    s = segments[0]
    assert s.final and len(s.audio) == 20
    assert s.audio_missing_us == s.audio_until_us - packet(19).end_us


def test_sound_during_an_overrun_gap_is_kept_in_the_segment_after_the_gap():
    segments = []
    seg = Segmenter(STREAM, 2.0, segments.append, audio=AUDIO)
    items = [i for i in arrivals(150) if not (isinstance(i, EncodedFrame) and 40 <= i.seq < 50)]
    seg.begin("inc")
    for item in items:
        if isinstance(item, EncodedFrame):
            if item.seq == 50:
                seg.gap(10)
            seg.add(item)
        else:
            seg.add_audio(item)
    seg.end()
    assert [s.frames[0].seq for s in segments] == [0, 60, 120]  # resumed at the keyframe after the gap
    assert segments[1].dropped_frames == 20  # 10 lost, 10 waiting for the keyframe
    seqs = check_partition(segments)
    assert seqs == [k for k in range(400) if 0 <= packet(k).pts_us < segments[-1].end_pts_us]
    assert segments[0].audio_until_us == frame(39).pts_us + round(1e6 / FPS)  # the picture's end
    assert segments[1].audio_from_us < segments[1].start_pts_us  # the gap's sound leads segment 1
    assert all(s.audio_missing_us == 0 for s in segments)


def test_packets_dropped_upstream_are_declared_missing_in_their_segment():
    segments = []
    seg = Segmenter(STREAM, 2.0, segments.append, audio=AUDIO)
    feed(seg, arrivals(130, skip={100, 101, 102}), start_at=0, stop_at=125)
    check_partition(segments)
    hole = packet(103).pts_us - packet(100).pts_us
    assert [s.audio_missing_us for s in segments] == [0, hole, 0]


@pytest.mark.parametrize("start", [80, 95])
def test_the_pre_event_ring_hands_over_sound_from_its_oldest_keyframe_on(start):
    """The ring holds sound under the same bounds; the first segment starts its sound at its first picture."""
    ring = PreEventRing(1.5, 10_000_000)
    segments = []
    seg = Segmenter(STREAM, 2.0, segments.append, audio=AUDIO)
    items = arrivals(160)
    for i, item in enumerate(items):
        if isinstance(item, EncodedFrame) and item.seq == start:
            break
        if isinstance(item, EncodedFrame):
            ring.append(item)
        else:
            ring.append_audio(item)
    frames, audio = ring.drain()
    assert frames[0].seq == 60
    first = next(k for k in range(400) if packet(k).pts_us >= frames[0].pts_us)
    assert [p.seq for p in audio[:2]] == [first - 1, first]  # the pre-roll, then the window's sound
    seg.begin("inc")
    for f in frames:
        seg.add(f, pre_event=True)
    for p in audio:
        seg.add_audio(p)
    for item in items[i:]:
        if isinstance(item, EncodedFrame):
            if item.seq == 150:
                seg.end()
            if seg.active:
                seg.add(item)
            else:
                seg.advance(item.pts_us)
        else:
            seg.add_audio(item)
    assert seg.waiting == 0
    seqs = check_partition(segments)
    assert seqs == [k for k in range(400) if frames[0].pts_us <= packet(k).pts_us < segments[-1].end_pts_us]
    assert segments[0].audio_from_us == frames[0].pts_us
    assert segments[0].audio_preroll.seq == first - 1
    assert all(b.audio_preroll is a.audio[-1] for a, b in zip(segments, segments[1:]))


def test_the_ring_keeps_no_sound_older_than_its_pictures_and_counts_it_against_the_byte_bound():
    ring = PreEventRing(1.0, 10_000_000)
    ring.append_audio(packet(0))  # nothing held yet: no picture to belong to
    assert ring.stats().audio_packets == 0
    for item in arrivals(100):
        (ring.append if isinstance(item, EncodedFrame) else ring.append_audio)(item)
    frames, audio = ring.drain()
    assert audio[0].pts_us < frames[0].pts_us <= audio[1].pts_us  # one packet of pre-roll, no more
    assert all(b.seq == a.seq + 1 for a, b in zip(audio, audio[1:]))
    tight = PreEventRing(10.0, 3 * 30 * 100 + 10)  # room for three GOPs of pictures, not their sound
    for item in arrivals(130):
        (tight.append if isinstance(item, EncodedFrame) else tight.append_audio)(item)
    assert tight.nbytes <= tight.max_bytes and tight.stats().audio_packets > 0
    assert tight.stats().gops < 3
    off = PreEventRing(0.0, 1000)
    off.append(frame(0))
    off.append_audio(packet(0))
    assert off.drain() == ([], [])


def test_without_sound_segments_leave_at_once_and_carry_none():
    segments = []
    seg = Segmenter(STREAM, 2.0, segments.append)
    seg.begin("inc")
    for n in range(61):
        seg.add(frame(n))
    assert len(segments) == 1 and segments[0].audio == () and segments[0].audio_stream is None
    assert seg.add_audio(packet(0)) is False


def test_missing_counts_holes_not_the_edges_of_a_span():
    packets = [packet(k) for k in range(10)]
    assert missing_us(packets, packets[0].pts_us - 1000, packets[-1].end_us + 1000, FRAME_US) == 0
    assert missing_us(packets[:4] + packets[6:], packets[0].pts_us, packets[-1].end_us, FRAME_US) == \
        packets[6].pts_us - packets[4].pts_us
    assert missing_us([], 0, 500_000, FRAME_US) == 500_000
