"""Sealing: stock age opens what we seal, only the right keys do, and the manifest is signed and canonical."""

import base64
import hashlib
import json
import os
import subprocess

import pyrage
import pytest

import agent
from evidence import seal as seal_module
from evidence.chain import ChainState, ChainStateError
from evidence.keys import generate_device_key, load_evidence_identities, load_recipients, load_signing_key, recipient_key_id
from evidence.seal import FORMAT, MANIFEST_FIELDS, DecryptionError, Manifest, ManifestError, SealError, Sealer, SignatureError, canonical_json, decrypt, stem_for, verify_manifest
from evidence.spool import Spool

from camera.frames import EncodedFrame
from camera.segment import Segment

from .conftest import AGE, FRAME_US, STREAM, cut


def age_decrypt(identity, ciphertext, tmp_path):
    path = tmp_path / "seg.age"
    path.write_bytes(ciphertext)
    return subprocess.run([AGE, "-d", "-i", str(identity), str(path)], capture_output=True)


def test_stock_age_decrypts_to_exactly_the_payload(env, frames_60, tmp_path):
    segment = cut(frames_60, "inc-1")[0]
    sealed = env.seal_all([segment])[0]
    assert sealed.ciphertext.startswith(b"age-encryption.org/v1\n")
    proc = age_decrypt(env.identity, sealed.ciphertext, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == segment.payload()
    assert hashlib.sha256(sealed.ciphertext).hexdigest() == sealed.ciphertext_sha256
    assert hashlib.sha256(sealed.manifest).hexdigest() == sealed.manifest_sha256


def test_a_wrong_key_cannot_decrypt(env, frames_60, tmp_path):
    sealed = env.seal_all(cut(frames_60, "inc-1")[:1])[0]
    proc = age_decrypt(env.escrow / "evidence.key", sealed.ciphertext, tmp_path)  # escrow not a recipient here
    assert proc.returncode != 0 and proc.stdout == b""
    with pytest.raises(DecryptionError, match="does not match any recipient"):
        decrypt(sealed.ciphertext, load_evidence_identities(env.escrow / "evidence.key"))


def test_each_of_two_recipients_decrypts(env, frames_60, tmp_path):
    segment = cut(frames_60, "inc-1")[0]
    sealed = env.seal_all([segment], env.sealer(escrow=True))[0]
    for keydir in (env.keys, env.escrow):
        assert decrypt(sealed.ciphertext, load_evidence_identities(keydir / "evidence.key")) == segment.payload()
        assert age_decrypt(keydir / "evidence.key", sealed.ciphertext, tmp_path).stdout == segment.payload()
    manifest = json.loads(sealed.manifest)
    expected = sorted(recipient_key_id((d / "evidence.pub").read_text().strip()) for d in (env.keys, env.escrow))
    assert manifest["recipient_key_ids"] == expected


def test_damaged_ciphertext_does_not_decrypt(env, frames_60):
    sealed = env.seal_all(cut(frames_60, "inc-1")[:1])[0]
    damaged = bytearray(sealed.ciphertext)
    damaged[-100] ^= 0x01
    with pytest.raises(DecryptionError, match="damaged"):
        decrypt(bytes(damaged), load_evidence_identities(env.identity))
    with pytest.raises(DecryptionError, match="not in age format"):
        decrypt(b"junk", load_evidence_identities(env.identity))


def test_manifest_fields(env, frames_60):
    segments = cut(frames_60, "inc-42", pre_event_frames=4)
    sealed = env.seal_all(segments[:2], clock_sync="ntp-synced offset=+0.004s")
    first, second = (json.loads(s.manifest) for s in sealed)
    assert set(first) == set(MANIFEST_FIELDS)
    assert first["format"] == FORMAT
    assert (first["seq"], second["seq"]) == (1, 2)  # the spool reads these two with json.loads
    assert first["ciphertext_sha256"] == sealed[0].ciphertext_sha256
    assert first["prev_manifest_sha256"] is None
    assert second["prev_manifest_sha256"] == sealed[0].manifest_sha256
    assert (first["device_id"], first["site"], first["incident_id"]) == ("kod-07", "duisburg", "inc-42")
    assert (first["segment_index"], first["final"], second["segment_index"]) == (0, False, 1)
    assert first["start_time"] == "2025-06-15T15:06:40.000Z"
    assert second["start_time"] == "2025-06-15T15:06:40.333Z"
    assert first["end_time"] == second["start_time"]
    assert first["clock_sync"] == "ntp-synced offset=+0.004s"
    assert first["codec"] == {**STREAM.as_dict(), "fps": 30}
    assert (first["frame_count"], first["first_frame_seq"], first["last_frame_seq"]) == (10, 0, 9)
    assert (first["pre_event_frames"], second["pre_event_frames"], first["dropped_frames"]) == (4, 0, 0)
    assert first["frame_pts_us"] == [i * FRAME_US for i in range(10)]
    assert second["start_pts_us"] == 10 * FRAME_US
    assert first["plaintext_bytes"] == segments[0].nbytes
    assert first["ciphertext_bytes"] == len(sealed[0].ciphertext)
    assert first["software_version"] == agent.__version__
    assert first["signing_key_id"] == next(iter(env.devices))
    assert sealed[0].stem == "kod-07-0000000001"
    assert sealed[0].manifest_name == "kod-07-0000000001.manifest.json"
    assert sealed[0].ciphertext_name == "kod-07-0000000001.age"


def test_manifest_is_canonical_and_signed_over_the_rest(env, frames_60):
    sealed = env.seal_all(cut(frames_60, "inc-1")[:1])[0]
    doc = json.loads(sealed.manifest)
    assert sealed.manifest == canonical_json(doc) + b"\n"
    key = next(iter(env.devices.values()))
    signature = base64.b64decode(doc.pop("signature"))
    assert key.verify(signature, canonical_json(doc))
    manifest = verify_manifest(sealed.manifest, key)
    assert isinstance(manifest, Manifest)
    assert manifest.seq == 1 and manifest.sha256 == sealed.manifest_sha256
    assert manifest.frame_pts_us[:2] == (0, FRAME_US)


def test_any_change_to_the_manifest_breaks_the_signature(env, frames_60):
    sealed = env.seal_all(cut(frames_60, "inc-1")[:1])[0]
    key = next(iter(env.devices.values()))
    doc = json.loads(sealed.manifest)
    doc["incident_id"] = "inc-2"
    with pytest.raises(SignatureError):
        verify_manifest(canonical_json(doc) + b"\n", key)
    pretty = json.dumps(json.loads(sealed.manifest), indent=1).encode()
    with pytest.raises(ManifestError, match="canonical"):
        verify_manifest(pretty, key)
    with pytest.raises(ManifestError, match="not valid JSON"):
        verify_manifest(sealed.manifest[:-20], key)


def test_another_devices_key_does_not_verify(env, frames_60, tmp_path):
    sealed = env.seal_all(cut(frames_60, "inc-1")[:1])[0]
    other = generate_device_key(tmp_path, device_id="kod-08")
    with pytest.raises(SignatureError, match="signed with key"):
        verify_manifest(sealed.manifest, other.public)


def test_sealer_refuses_bad_context(env):
    recipients = load_recipients([env.keys / "evidence.pub"])
    key = load_signing_key(env.device / "device.key", device_id="kod-07")
    chain = ChainState.load(env.state)
    with pytest.raises(SealError, match="no recipients"):
        Sealer(device_id="kod-07", site="duisburg", recipients=[], signing_key=key, chain=chain)
    with pytest.raises(SealError, match="enrolled for device"):
        Sealer(device_id="kod-99", site="duisburg", recipients=recipients, signing_key=key, chain=chain)
    with pytest.raises(SealError, match="device id"):
        Sealer(device_id="Kod 7", site="duisburg", recipients=recipients, signing_key=key, chain=chain)


def test_seal_does_not_advance_the_chain_until_commit(env, frames_60):
    sealer = env.sealer()
    seg = cut(frames_60, "inc-1")[0]
    a = sealer.seal(seg, clock_sync="ntp-synced")
    b = sealer.seal(seg, clock_sync="ntp-synced")
    assert a.seq == b.seq == 1
    sealer.commit(a)
    assert sealer.seal(seg, clock_sync="ntp-synced").seq == 2
    with pytest.raises(ChainStateError, match="cannot advance"):
        sealer.commit(b)  # seq 1 again: refused


def test_bad_incident_or_clock_text_is_refused(env, frames_60):
    seg = cut(frames_60, "inc-ü")[0]
    with pytest.raises(SealError, match="incident id"):
        env.sealer().seal(seg, clock_sync="ntp-synced")
    with pytest.raises(SealError, match="clock sync"):
        env.sealer().seal(cut(frames_60, "inc-1")[0], clock_sync="")


@pytest.mark.parametrize("sizes", [[0], [1], [65535], [65536], [65537], [65536, 65536], [70000, 3, 200000]])
def test_age_chunk_boundaries_open_with_stock_age_and_pyrage(env, sizes, tmp_path):
    """The payload is cut into 64 KiB STREAM chunks; the last-chunk flag at exact multiples is the classic trap."""
    frames = tuple(EncodedFrame(data=os.urandom(n), pts_us=i * FRAME_US, keyframe=i == 0, wall_time=1e9 + i, seq=i)
                   for i, n in enumerate(sizes))
    segment = Segment(incident_id="inc-1", index=0, frames=frames, stream=STREAM, final=True)
    sealed = env.sealer(escrow=True).seal(segment, clock_sync="ntp-synced")
    assert len(sealed.ciphertext) > sum(sizes)
    proc = age_decrypt(env.identity, sealed.ciphertext, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == segment.payload()
    assert pyrage.decrypt(sealed.ciphertext, load_evidence_identities(env.escrow / "evidence.key")) == segment.payload()


def test_two_seals_of_the_same_segment_differ(env, frames_60):
    """Fresh file key and nonce per segment: equal plaintexts never give equal ciphertexts."""
    seg = cut(frames_60, "inc-1")[0]
    sealer = env.sealer()
    assert sealer.seal(seg, clock_sync="x").ciphertext != sealer.seal(seg, clock_sync="x").ciphertext


def test_the_fallback_for_older_cryptography_gives_the_same_format(env, frames_60, tmp_path, monkeypatch):
    monkeypatch.setattr(seal_module, "_ENCRYPT_INTO", False)
    segment = cut(frames_60, "inc-1")[1]
    sealed = env.sealer().seal(segment, clock_sync="ntp-synced")
    assert age_decrypt(env.identity, sealed.ciphertext, tmp_path).stdout == segment.payload()


def test_one_sealer_seals_segments_of_changing_size(env, frames_60):
    """The sealer reuses its chunk buffers; a short segment after a long one must not carry old bytes."""
    sealer = env.sealer()
    identities = load_evidence_identities(env.identity)
    for segment in (cut(frames_60, "inc-1", per_segment=60)[0], cut(frames_60, "inc-1")[0],
                    cut(frames_60, "inc-1", per_segment=30)[0]):
        sealed = sealer.seal(segment, clock_sync="ntp-synced")
        sealer.commit(sealed)
        assert decrypt(sealed.ciphertext, identities) == segment.payload()
        assert len(sealed.ciphertext) == json.loads(sealed.manifest)["ciphertext_bytes"]


def test_sealing_opens_no_files(env, frames_60, monkeypatch):
    """Plaintext never touches disk: sealing runs with file creation switched off."""
    sealer = env.sealer()
    segment = cut(frames_60, "inc-1")[0]

    def refuse(*args, **kwargs):
        raise AssertionError(f"sealing tried to open a file: {args[:1]}")

    for target in ("builtins.open", "os.open", "io.open"):
        monkeypatch.setattr(target, refuse)
    sealed = sealer.seal(segment, clock_sync="ntp-synced")
    monkeypatch.undo()
    assert decrypt(sealed.ciphertext, load_evidence_identities(env.identity)) == segment.payload()


def test_streamed_seal_lands_in_the_spool_and_opens_with_stock_age(env, tmp_path):
    """The device path: ciphertext streamed chunk by chunk into the spool's writer, never whole in RAM."""
    sealer = env.sealer()
    spool = Spool.open(tmp_path / "spool-stream")
    frames = tuple(EncodedFrame(data=os.urandom(n), pts_us=i * FRAME_US, keyframe=i == 0, wall_time=1e9 + i, seq=i)
                   for i, n in enumerate([70000, 200000, 3, 65536]))
    segment = Segment(incident_id="inc-1", index=0, frames=frames, stream=STREAM, final=True)
    writes = []

    with spool.begin(sealer.next_stem()) as out:
        real_write = out.write

        def recording_write(data):
            writes.append(len(data))
            real_write(data)

        out.write = recording_write
        sealed = sealer.seal(segment, clock_sync="ntp-synced", out=out)
        info = out.commit(sealed.manifest, sealed.seq, sealed.ciphertext_sha256)
    sealer.commit(sealed)
    assert sealed.ciphertext is None
    assert len(writes) > 2 and max(writes[1:]) == 64 * 1024 + 16  # header, then one write per age chunk
    stored = spool.read(info.stem)
    assert len(stored.ciphertext) == sealed.ciphertext_bytes == info.ciphertext_bytes == sum(writes)
    assert hashlib.sha256(stored.ciphertext).hexdigest() == sealed.ciphertext_sha256
    assert json.loads(stored.manifest)["ciphertext_bytes"] == sealed.ciphertext_bytes
    proc = age_decrypt(env.identity, stored.ciphertext, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == segment.payload()
    assert sealer.next_stem() == stem_for(env.device_id, sealed.seq + 1)
