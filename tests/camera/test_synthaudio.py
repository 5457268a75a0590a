"""The synthetic camera's sound: AAC packets on the pictures' clock, a beep exactly at every second's frame."""

import threading

from camera.decode import beep_onsets, decode_audio, decode_frame_numbers
from camera.frames import AudioPacket, EncodedFrame


def split(items):
    frames = [i for i in items if isinstance(i, EncodedFrame)]
    audio = [i for i in items if isinstance(i, AudioPacket)]
    return frames, audio


def beep_offsets_us(frames, audio, info, fps=30):
    """Each beep's onset minus the time of the frame it belongs to (the one numbered a multiple of fps)."""
    numbers = decode_frame_numbers(b"".join(f.data for f in frames))
    due = {n: f.pts_us for n, f in zip(numbers, frames) if n is not None and n % fps == 0}
    onsets = beep_onsets(*decode_audio(audio, info), info.sample_rate)
    offsets = []
    for onset in onsets:
        n, at = min(due.items(), key=lambda kv: abs(kv[1] - onset))
        offsets.append((n, onset - at))
    return offsets


def test_a_source_without_sound_makes_no_audio(small_source):
    source = small_source()
    assert source.audio is None
    assert all(isinstance(i, EncodedFrame) for i in source.media(10))


def test_packets_follow_each_other_without_gaps_on_the_pictures_clock(small_source):
    source = small_source(audio_bitrate=48_000)
    frames, audio = split(list(source.media(95)))
    info = source.audio
    assert (info.codec, info.sample_rate, info.channels, info.frame_samples) == ("aac", 48_000, 1, 1024)
    assert [p.seq for p in audio] == list(range(len(audio)))
    assert all(b.pts_us == a.end_us for a, b in zip(audio, audio[1:]))
    # Rendered up to the last frame's time, less what the encoder still holds (a frame or two).
    assert frames[-1].pts_us - 3 * info.frame_us < audio[-1].end_us <= frames[-1].pts_us


def test_every_beep_starts_with_its_frame(small_source):
    source = small_source(audio_bitrate=48_000)
    frames, audio = split(list(source.media(125)))
    offsets = beep_offsets_us(frames, audio, source.audio)
    print("beep offsets against their frames (frame number, µs):", offsets)
    assert [n for n, _ in offsets] == [0, 30, 60, 90, 120]
    assert all(abs(off) <= source.audio.frame_us for _, off in offsets)


def test_real_time_source_keeps_sound_in_step_with_the_real_frame_times(small_source):
    """Paced frames carry their real capture times; the beeps follow those times, not the nominal rate."""
    source = small_source(audio_bitrate=48_000, realtime=True, max_frames=65)
    items, lock = [], threading.Lock()

    def keep(item):
        with lock:
            items.append(item)

    source.start(keep, keep)
    assert source.wait(30)
    source.stop()
    assert source.fault is None
    frames, audio = split(items)
    assert len(frames) == 65 and audio
    offsets = beep_offsets_us(frames, audio, source.audio)
    print("real-time beep offsets (frame number, µs):", offsets)
    assert [n for n, _ in offsets] == [0, 30, 60]
    assert all(abs(off) <= source.audio.frame_us for _, off in offsets)


def test_a_beep_decodes_in_time_from_any_packet_on(small_source):
    """A segment starts mid-stream: its first packet decodes without the one before it."""
    source = small_source(audio_bitrate=48_000)
    frames, audio = split(list(source.media(95)))
    second = next(i for i, p in enumerate(audio) if p.pts_us >= frames[30].pts_us)
    offsets = beep_offsets_us(frames, audio[second:], source.audio)
    print("beep offsets decoding from the packet at the cut (frame number, µs):", offsets)
    assert [n for n, _ in offsets] == [30, 60, 90]
    assert all(abs(off) <= source.audio.frame_us for _, off in offsets)
