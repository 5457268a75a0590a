"""Sound through ring, recorder and segmenter, from real AAC and H.264: every beep with its frame, per segment.

Each segment is decoded alone (pictures and sound), as a court would open one file: the synthetic
camera's beeps must start within one audio frame of the picture numbered a multiple of the frame
rate, across segment cuts, across the pre-event boundary and after an overrun gap, and the sound of
all segments together must be as long as the pictures.
"""

import pytest

from agent.pipeline import RecorderThread
from agent.recorder import AUDIO_SILENCE_US, Action, Recorder, Trigger
from camera.decode import beep_onsets, decode_audio, decode_frame_numbers
from camera.frames import AudioPacket, EncodedFrame
from camera.ring import PreEventRing

FPS = 30


def record(source, items, start_at, stop_at, pre_event=2.0, drop=()):
    """Drive a recorder with the source's frames and packets in hand-over order; frames in ``drop``
    are lost on the way (the recorder sees the gap in their numbers)."""
    segments = []
    recorder = Recorder(source.info, PreEventRing(pre_event, 64 << 20), 2.0, segments.append,
                        audio=source.audio)
    for item in items:
        if isinstance(item, AudioPacket):
            recorder.handle_audio(item)
            continue
        if item.seq == start_at:
            recorder.handle_trigger(Trigger(Action.START, "test"))
        if item.seq == stop_at:
            recorder.handle_trigger(Trigger(Action.STOP, "test"))
        if item.seq not in drop:
            recorder.handle_frame(item)
    recorder.shutdown()
    return segments, recorder


def beeps_of(segments, info):
    """(segment, frame number, offset in µs, onset) of every beep, each segment decoded alone.

    A beep starts exactly at a cut (every keyframe has a beep): it begins in the packet across the
    cut, which belongs to the earlier segment (``onset`` True), and sounds on from the later segment's
    first sample (``onset`` False: the offset there is where that segment's sound begins, at most one
    audio frame after its first picture)."""
    due = {}
    for segment in segments:
        numbers = decode_frame_numbers(segment.payload())
        assert numbers == [f.seq for f in segment.frames]
        due.update({n: f.pts_us for n, f in zip(numbers, segment.frames) if n % FPS == 0})
    result = []
    for segment in segments:
        samples, start_us = decode_audio(segment.audio, info, segment.audio_preroll)
        for onset in beep_onsets(samples, start_us, info.sample_rate):
            n, at = min(due.items(), key=lambda kv: abs(kv[1] - onset))
            result.append((segment.index, n, onset - at, onset - start_us > 1000))  # 1 ms: a tone period
    print("beeps (segment, frame number, offset in µs, onset):", result)
    return result


def check_beeps(found, info, expected):
    assert sorted({n for _, n, _, _ in found}) == expected
    assert all(abs(offset) <= info.frame_us for _, _, offset, _ in found)  # the bound: one frame
    assert all(abs(offset) <= 1000 for _, _, offset, onset in found if onset)  # a true onset: within 1 ms


@pytest.fixture(scope="module")
def media(request):
    from camera.synthetic import SyntheticSource

    source = SyntheticSource(160, 120, float(FPS), 300_000, FPS, realtime=False, audio_bitrate=48_000)
    return source, list(source.media(300))


def test_every_beep_with_its_frame_across_cuts_and_the_pre_event_boundary(media):
    source, items = media
    segments, recorder = record(source, items, start_at=100, stop_at=250)
    info = source.audio
    assert segments[0].frames[0].seq == 60 and segments[0].pre_event_frames == 40  # 2 s window: from 60
    assert [s.frames[0].seq for s in segments] == [60, 120, 180, 240]
    check_beeps(beeps_of(segments, info), info, [60, 90, 120, 150, 180, 210, 240])
    video_us = segments[-1].end_pts_us - segments[0].start_pts_us
    audio_us = sum(s.audio_duration_us for s in segments)
    print(f"incident: video {video_us} µs, audio {audio_us} µs")
    assert abs(audio_us - video_us) <= info.frame_us
    assert all(s.audio_missing_us == 0 for s in segments)
    assert recorder.audio_packets_lost == 0


def test_sound_continues_across_an_overrun_gap(media):
    source, items = media
    segments, _ = record(source, items, start_at=100, stop_at=250, drop=range(135, 140))
    info = source.audio
    assert [s.frames[0].seq for s in segments] == [60, 120, 150, 210]
    assert segments[2].dropped_frames == 15
    check_beeps(beeps_of(segments, info), info, [60, 90, 120, 150, 180, 210, 240])
    packets = [p.seq for s in segments for p in s.audio]
    assert packets == list(range(packets[0], packets[-1] + 1))  # no packet lost or doubled at the gap
    assert all(s.audio_missing_us == 0 for s in segments)


def test_packets_and_frames_share_the_recorder_threads_queue(media):
    source, items = media
    segments = []
    recorder = Recorder(source.info, PreEventRing(2.0, 64 << 20), 2.0, segments.append, audio=source.audio)
    thread = RecorderThread(recorder, queue_frames=len(items))
    for item in items[:len(items) // 2]:
        (thread.offer_audio if isinstance(item, AudioPacket) else thread.offer)(item)
    thread.trigger(Trigger(Action.START, "test"))
    for item in items[len(items) // 2:]:
        (thread.offer_audio if isinstance(item, AudioPacket) else thread.offer)(item)
    thread.start()
    thread.stop()
    assert recorder.audio_packets_seen == sum(isinstance(i, AudioPacket) for i in items)
    assert segments and all(s.audio for s in segments)
    assert segments[0].audio_from_us == segments[0].start_pts_us


def test_a_source_without_sound_records_none(small_source):
    source = small_source()
    segments, recorder = record(source, list(source.media(130)), start_at=70, stop_at=120)
    assert segments and all(s.audio == () and s.audio_stream is None for s in segments)
    assert recorder.audio_packets_seen == 0 and all(isinstance(f, EncodedFrame) for s in segments for f in s.frames)


def test_a_microphone_that_goes_silent_is_reported_and_the_pictures_go_on(media):
    """Packets stop (unplugged) while pictures go on: the recorder reports the silence, and the
    segments declare the sound they miss; when packets come again, the report clears."""
    source, items = media
    cut_off = items.index(next(i for i in items if isinstance(i, EncodedFrame) and i.seq == 150))
    back = items.index(next(i for i in items if isinstance(i, EncodedFrame) and i.seq == 240))
    segments = []
    recorder = Recorder(source.info, PreEventRing(2.0, 64 << 20), 2.0, segments.append, audio=source.audio)
    silent_at = None
    for n, item in enumerate(items):
        if isinstance(item, AudioPacket):
            if not cut_off <= n < back:
                recorder.handle_audio(item)
            continue
        if item.seq == 100:
            recorder.handle_trigger(Trigger(Action.START, "test"))
        recorder.handle_frame(item)
        if recorder.status().audio_silent and silent_at is None:
            silent_at = item.seq
    heard = max(i.end_us for i in items[:cut_off] if isinstance(i, AudioPacket))
    due = next(i.seq for i in items if isinstance(i, EncodedFrame) and i.pts_us - heard > AUDIO_SILENCE_US)
    assert silent_at == due  # the first picture more than 2 s after the last sound
    assert not recorder.status().audio_silent  # sound came back at frame 240
    recorder.shutdown()
    assert [s.frames[0].seq for s in segments] == [60, 120, 180, 240]
    assert segments[1].audio_missing_us > 0 and segments[2].audio_missing_us > 1_900_000
