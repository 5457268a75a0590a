"""Officer check-out in the sealed format: the optional ``officer`` field is signed with the manifest, and
verify and export read manifests with and without it (older devices never write it)."""

import json

import pytest

from evidence.export import export_incident
from evidence.keys import load_evidence_identities, load_signing_key
from evidence.seal import MANIFEST_FIELDS, Manifest, ManifestError, SealError, SignatureError, canonical_json, verify_manifest
from evidence.verify import verify_paths

from .conftest import cut


def resigned(env, doc: dict) -> bytes:
    """``doc`` signed with the device's real key: only the field rules can refuse it."""
    import base64

    doc = {k: v for k, v in doc.items() if k != "signature"}
    key = load_signing_key(env.device / "device.key")
    doc["signature"] = base64.b64encode(key.sign(canonical_json(doc))).decode("ascii")
    return canonical_json(doc) + b"\n"


def test_the_officer_is_a_signed_field_of_the_manifest(env, frames_60):
    sealed = env.seal_all(cut(frames_60, "inc-1")[:1], officer="ko-17")[0]
    doc = json.loads(sealed.manifest)
    assert doc["officer"] == "ko-17" and set(doc) == set(MANIFEST_FIELDS) | {"officer"}
    key = next(iter(env.devices.values()))
    assert verify_manifest(sealed.manifest, key).officer == "ko-17"
    doc["officer"] = "ko-18"  # another officer's name put in afterwards
    with pytest.raises(SignatureError):
        verify_manifest(canonical_json(doc) + b"\n", key)


def test_without_an_officer_the_manifest_is_the_format_it_always_was(env, frames_60):
    sealed = env.seal_all(cut(frames_60, "inc-1")[:1])[0]
    doc = json.loads(sealed.manifest)
    assert set(doc) == set(MANIFEST_FIELDS) and "officer" not in doc
    assert Manifest.parse(sealed.manifest).officer is None


@pytest.mark.parametrize("value", ["", "Ko-17", "a" * 17, "-ko", "ko 17", 17, None, "köln"])
def test_a_bad_officer_id_is_refused_when_sealing_and_when_reading(env, frames_60, value):
    segment = cut(frames_60, "inc-1")[0]
    if value is not None:
        with pytest.raises(SealError, match="officer id"):
            env.sealer().seal(segment, clock_sync="ntp-synced", officer=value)
    good = json.loads(env.seal_all([segment], officer="ko-17")[0].manifest)
    with pytest.raises(ManifestError, match="'officer' has an invalid value"):
        Manifest.parse(resigned(env, {**good, "officer": value}))


def test_an_end_marker_carries_no_officer(env, frames_60):
    sealer = env.sealer()
    env.seal_all(cut(frames_60, "inc-1", final=False)[:1], sealer)
    marker = json.loads(sealer.seal_end_marker(incident_id="inc-1", segment_index=1, reason="restart",
                                               last_frame_time="2025-06-15T15:06:40.333Z",
                                               clock_sync="ntp-synced").manifest)
    with pytest.raises(ManifestError, match="unknown field"):
        Manifest.parse(resigned(env, {**marker, "officer": "ko-17"}))


def test_verify_and_export_take_a_set_with_and_without_officers(env, frames_60, tmp_path):
    segments = cut(frames_60, "inc-1")
    env.seal_all(segments[:3])  # sealed before check-out existed (or while nobody was assigned)
    env.seal_all(segments[3:], officer="ko-17")
    report = verify_paths([env.spool], env.devices)
    assert report.ok, report.lines()
    assert [s.to_dict()["officer"] for s in report.segments] == [None] * 3 + ["ko-17"] * 3
    result = export_incident([env.spool], devices=env.devices, identities=load_evidence_identities(env.identity),
                             out=tmp_path / "inc-1.mp4")
    doc = json.loads(result.report_path.read_text())
    assert doc["complete"] and doc["officers"] == ["ko-17"]
    assert [s["officer"] for s in doc["segments"]] == [None] * 3 + ["ko-17"] * 3
