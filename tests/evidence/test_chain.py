"""The chain head survives reboots, never silently resets, and can catch up with the spool after a crash."""

import json

import pytest

from evidence.chain import STATE_FILE, ChainState, ChainStateError
from evidence.seal import SignatureError
from evidence.verify import verify_paths

from .conftest import cut, encode_h264

H1, H2 = "a" * 64, "b" * 64


def test_chain_continues_across_a_reboot(env, frames_60):
    segments = cut(frames_60, "inc-1")
    first = env.seal_all(segments[:3])
    # reboot: new ChainState from disk, new Sealer
    chain = ChainState.load(env.state)
    assert (chain.seq, chain.manifest_sha256) == (3, first[-1].manifest_sha256)
    rest = env.seal_all(segments[3:])
    assert [s.seq for s in first + rest] == [1, 2, 3, 4, 5, 6]
    assert json.loads(rest[0].manifest)["prev_manifest_sha256"] == first[-1].manifest_sha256
    report = verify_paths([env.spool], env.devices)
    assert report.ok, report.lines()


def test_a_new_incident_after_reboot_keeps_the_device_chain(env, frames_60):
    env.seal_all(cut(frames_60[:30], "inc-1"))
    later = encode_h264(20, first_seq=1000, pts_base_us=0, wall_base=1_750_000_600.0)  # media clock restarted
    env.seal_all(cut(later, "inc-2"))
    report = verify_paths([env.spool], env.devices)
    assert report.ok, report.lines()
    assert sorted(i for _, i in report.incidents()) == ["inc-1", "inc-2"]


def test_crash_between_spool_write_and_chain_update_is_recovered_by_adopt(env, frames_60):
    segments = cut(frames_60, "inc-1")
    env.seal_all(segments[:2])
    orphan = env.seal_all(segments[2:3], commit=False)[0]  # in the spool, chain.json not yet updated
    chain = ChainState.load(env.state)
    assert chain.seq == 2
    newest = json.loads((env.spool / orphan.manifest_name).read_bytes())
    assert chain.adopt(newest["seq"], orphan.manifest_sha256) is True
    assert chain.adopt(1, H1) is False  # older: ignored
    env.seal_all(segments[3:])
    assert verify_paths([env.spool], env.devices).ok


def test_sealer_catch_up_takes_the_spools_newest_manifest(env, frames_60):
    segments = cut(frames_60, "inc-1")
    env.seal_all(segments[:2])
    orphan = env.seal_all(segments[2:3], commit=False)[0]
    sealer = env.sealer()  # reboot
    assert sealer.catch_up(None) is False
    assert sealer.catch_up(orphan.manifest) is True
    assert sealer.catch_up(orphan.manifest) is False  # already there
    assert sealer.chain.head() == (3, orphan.manifest_sha256)
    env.seal_all(segments[3:], sealer)
    assert verify_paths([env.spool], env.devices).ok
    forged = orphan.manifest.replace(b'"seq":3', b'"seq":9')
    with pytest.raises(SignatureError):
        sealer.catch_up(forged)


def test_without_adopt_the_fork_is_detected(env, frames_60):
    segments = cut(frames_60, "inc-1")
    env.seal_all(segments[:2])
    orphan = env.seal_all(segments[2:3], commit=False)[0]
    (env.spool / orphan.manifest_name).rename(env.spool / "elsewhere.manifest.json")
    (env.spool / orphan.ciphertext_name).rename(env.spool / "elsewhere.age")
    env.seal_all(segments[2:])  # reuses seq 3 with a different manifest
    report = verify_paths([env.spool], env.devices)
    assert not report.ok
    assert any("seq 3 appears in 2 different signed manifests" in line for line in report.lines())


def test_state_file_is_written_atomically_and_reloads(tmp_path):
    chain = ChainState.load(tmp_path)
    assert (chain.seq, chain.manifest_sha256, chain.next_seq) == (0, None, 1)
    chain.advance(1, H1)
    chain.advance(2, H2)
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]
    again = ChainState.load(tmp_path)
    assert again.head() == (2, H2)


def test_advance_must_be_the_next_seq(tmp_path):
    chain = ChainState.load(tmp_path)
    with pytest.raises(ChainStateError, match="next segment must have seq 1"):
        chain.advance(2, H1)
    with pytest.raises(ChainStateError, match="not a SHA-256"):
        chain.advance(1, "xyz")


@pytest.mark.parametrize("content", [
    b"", b"{", b"null", b'{"format": 1, "seq": 5}', b'{"format": 1, "seq": -1, "manifest_sha256": null}',
    b'{"format": 1, "seq": 3, "manifest_sha256": null}', b'{"format": 2, "seq": 0, "manifest_sha256": null}',
    b'{"format": 1, "seq": 3, "manifest_sha256": "abc"}', b"\xff\xfe",
])
def test_a_damaged_state_file_is_an_error_never_a_reset(tmp_path, content):
    (tmp_path / STATE_FILE).write_bytes(content)
    with pytest.raises(ChainStateError, match="damaged; not starting a new chain"):
        ChainState.load(tmp_path)
    assert (tmp_path / STATE_FILE).read_bytes() == content  # left for a human


def test_missing_state_dir_is_an_error(tmp_path):
    with pytest.raises(ChainStateError, match="does not exist"):
        ChainState.load(tmp_path / "not-mounted")


def test_adopt_validates_its_input(tmp_path):
    chain = ChainState.load(tmp_path)
    with pytest.raises(ChainStateError):
        chain.adopt(0, H1)
    with pytest.raises(ChainStateError):
        chain.adopt(3, "nope")
    assert chain.adopt(7, H1) and chain.next_seq == 8
    assert ChainState.load(tmp_path).head() == (7, H1)
