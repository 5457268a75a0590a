from hypothesis import given, settings
from hypothesis import strategies as st

from camera.frames import EncodedFrame
from camera.ring import PreEventRing


def stream(sizes, gop=30, fps=30):
    """Fake encoded frames with chosen payload sizes: the ring never parses the bytes."""
    for i, size in enumerate(sizes):
        yield EncodedFrame(bytes(size), round(i * 1e6 / fps), i % gop == 0, 1000.0 + i / fps, i)


def test_window_holds_configured_seconds_starting_at_a_keyframe():
    ring = PreEventRing(window_seconds=5, max_bytes=10**9)
    for frame in stream([1000] * 30 * 20):
        ring.append(frame)
    assert ring.head.keyframe
    # 5 s window with 1 s GOPs: the oldest keyframe within the window is exactly 5 s before the newest frame
    # when the newest frame sits right after a keyframe; in general between 4 and 5 s.
    assert 4.0 <= ring.seconds_held <= 5.0
    assert ring.nbytes == len(ring) * 1000


def test_window_zero_keeps_nothing_in_memory():
    ring = PreEventRing(window_seconds=0, max_bytes=10**6)
    for frame in stream([5000] * 100):
        ring.append(frame)
    assert len(ring) == 0 and ring.nbytes == 0 and ring.drain() == ([], [])


def test_byte_bound_holds_under_a_bitrate_spike_and_head_stays_a_keyframe():
    bound = 200_000
    ring = PreEventRing(window_seconds=30, max_bytes=bound)
    sizes = [1_000] * 300 + [40_000] * 90 + [1_000] * 300  # a 3 s spike at ~10 Mbit/s
    peak = 0
    for frame in stream(sizes):
        ring.append(frame)
        peak = max(peak, ring.nbytes)
        assert ring.nbytes <= bound
        assert ring.head is None or ring.head.keyframe
    assert ring.gops_dropped_for_bytes > 0
    assert peak > bound // 2


def test_a_gop_larger_than_the_bound_is_dropped_whole_and_the_ring_waits_for_a_keyframe():
    ring = PreEventRing(window_seconds=30, max_bytes=50_000)
    frames = list(stream([10_000] * 45, gop=30))
    for frame in frames[:10]:
        ring.append(frame)
    # the 6th frame made the GOP 60 kB > 50 kB: the whole GOP went, frames 6..9 had nothing to join
    assert len(ring) == 0 and ring.wants_keyframe and ring.frames_discarded == 4
    for frame in frames[10:30]:
        ring.append(frame)
    assert len(ring) == 0 and ring.frames_discarded == 24
    ring.append(frames[30])
    assert ring.head is frames[30] and not ring.wants_keyframe


def test_frames_are_kept_by_reference_and_drain_empties():
    ring = PreEventRing(window_seconds=2, max_bytes=10**9)
    frames = list(stream([100] * 90))
    for frame in frames:
        ring.append(frame)
    drained = ring.drain()[0]
    assert all(a is b for a, b in zip(drained, frames[-len(drained):]))
    assert drained[0].keyframe and len(ring) == 0 and ring.nbytes == 0


def test_gap_discards_the_undecodable_rest_of_the_gop():
    ring = PreEventRing(window_seconds=10, max_bytes=10**9)
    frames = list(stream([100] * 70))
    for frame in frames[:35]:
        ring.append(frame)
    ring.mark_gap()
    for frame in frames[40:65]:
        ring.append(frame)
    held = ring.drain()[0]
    assert [f.seq for f in held] == list(range(0, 35)) + list(range(60, 65))


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 60_000), min_size=1, max_size=400),
       gop=st.integers(1, 40), window=st.floats(0, 10), bound=st.integers(10_000, 400_000))
def test_invariants_hold_for_any_stream(sizes, gop, window, bound):
    ring = PreEventRing(window_seconds=window, max_bytes=bound)
    for frame in stream(sizes, gop=gop):
        ring.append(frame)
        assert ring.nbytes <= bound
        assert ring.nbytes == sum(f.size for g in ring._gops for f in g.frames)
        if len(ring):
            assert ring.head.keyframe
            assert frame.pts_us - ring.head.pts_us <= ring.window_us
    held = ring.drain()[0]
    assert [f.seq for f in held] == sorted(f.seq for f in held)
