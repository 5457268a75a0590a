from camera.frames import EncodedFrame, StreamInfo
from camera.segmenter import Segmenter

INFO = StreamInfo("h264", 160, 120, 30.0, 300_000, 30, "test")


def frames(count, gop=30, start=0):
    return [EncodedFrame(b"\x00\x00\x00\x01" + bytes([i % 256]), round(i * 1e6 / 30), i % gop == 0, 0.0, i)
            for i in range(start, start + count)]


def test_cuts_at_the_first_keyframe_after_segment_seconds():
    out = []
    seg = Segmenter(INFO, 2.0, out.append)
    seg.begin("inc")
    for f in frames(200, gop=25):  # keyframes at 0, 25, 50, ...: 2 s = 60 frames -> cut at 75, 150
        seg.add(f)
    seg.end()
    assert [(s.first_seq, s.last_seq, s.final) for s in out] == [(0, 74, False), (75, 149, False), (150, 199, True)]


def test_waits_for_a_keyframe_and_asks_for_one():
    asked, out = [], []
    seg = Segmenter(INFO, 2.0, out.append, lambda: asked.append(1))
    seg.begin("inc")
    for f in frames(40)[5:]:
        seg.add(f)
    seg.end()
    assert asked == [1] and out[0].first_seq == 30 and out[0].dropped_frames == 25


def test_a_gap_at_the_very_end_still_leaves_a_final_segment():
    out = []
    seg = Segmenter(INFO, 10.0, out.append)
    seg.begin("inc")
    for f in frames(45):
        seg.add(f)
    seg.gap(5)  # frames lost, then the incident ends before another keyframe
    assert out == []  # held back: final or not is unknown yet
    seg.end()
    assert [(s.index, s.final, s.last_seq) for s in out] == [(0, True, 44)]


def test_a_gap_in_the_middle_is_declared_in_the_next_segment():
    out = []
    seg = Segmenter(INFO, 10.0, out.append)
    seg.begin("inc")
    stream = frames(120)
    for f in stream[:40]:
        seg.add(f)
    seg.gap(3)
    for f in stream[43:]:
        seg.add(f)
    seg.end()
    assert [(s.first_seq, s.last_seq, s.dropped_frames, s.final) for s in out] == [
        (0, 39, 0, False), (60, 119, 3 + 17, True)]
