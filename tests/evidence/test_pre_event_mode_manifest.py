"""The optional manifest field ``pre_event_mode``: sealed when the recorder says it, absent in older manifests,
and verify, export and the parser accept both; a bad value is refused."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from base.canonical import canonical_json
from evidence.export import export_incident
from evidence.keys import load_evidence_identities, load_signing_key
from evidence.seal import Manifest, ManifestError, SealError, verify_manifest
from evidence.verify import verify_paths

from .conftest import cut


def device_key(env):
    [key] = env.devices.values()
    return key


def with_mode(segments, mode):
    return [dataclasses.replace(s, pre_event_mode=mode) for s in segments]


def test_the_mode_is_sealed_signed_and_read_back(env, frames_60):
    sealed = env.seal_all(with_mode(cut(frames_60[:20], "inc-a", pre_event_frames=7), "announced"))
    doc = json.loads(sealed[0].manifest)
    assert doc["pre_event_mode"] == "announced" and doc["pre_event_frames"] == 7
    manifest = verify_manifest(sealed[0].manifest, device_key(env))
    assert manifest.pre_event_mode == "announced"


def test_a_manifest_without_the_field_is_what_older_devices_wrote_and_still_valid(env, frames_60):
    sealed = env.seal_all(cut(frames_60[:20], "inc-old"))
    assert "pre_event_mode" not in json.loads(sealed[0].manifest)
    assert verify_manifest(sealed[0].manifest, device_key(env)).pre_event_mode is None


def test_verify_and_export_take_a_set_with_and_without_the_field(env, frames_60, tmp_path):
    env.seal_all(cut(frames_60[:20], "inc-old"))
    env.seal_all(with_mode(cut(frames_60[20:40], "inc-new"), "off"))
    report = verify_paths([env.spool], env.devices)
    assert report.ok, report.problems
    identities = load_evidence_identities(env.identity)
    for incident, mode in (("inc-old", None), ("inc-new", "off")):
        result = export_incident([env.spool], devices=env.devices, identities=identities,
                                 out=tmp_path / f"{incident}.mp4", incident_id=incident)
        assert {row["pre_event_mode"] for row in result.report["segments"]} == {mode}


def test_the_sealer_refuses_an_unknown_mode(env, frames_60):
    with pytest.raises(SealError, match="pre-event mode 'always' is not one of off, announced, standby"):
        env.sealer().seal(with_mode(cut(frames_60[:10], "inc-x"), "always")[0], clock_sync="ntp-synced")


def test_a_signed_manifest_with_a_bad_mode_is_refused(env, frames_60):
    doc = json.loads(env.seal_all(with_mode(cut(frames_60[:10], "inc-b"), "standby"))[0].manifest)
    doc["pre_event_mode"] = "always"
    del doc["signature"]
    doc["signature"] = base64.b64encode(load_signing_key(env.device / "device.key").sign(canonical_json(doc))).decode()
    with pytest.raises(ManifestError, match="'pre_event_mode' has an invalid value"):
        Manifest.parse(canonical_json(doc) + b"\n")


def test_an_end_marker_may_not_carry_it(env, frames_60):
    sealer = env.sealer()
    marker = json.loads(sealer.seal_end_marker(incident_id="inc-c", segment_index=1, reason="restart",
                                               last_frame_time="2025-06-15T15:06:41.000Z",
                                               clock_sync="ntp-synced").manifest)
    marker["pre_event_mode"] = "off"
    del marker["signature"]
    marker["signature"] = "A" * 88
    with pytest.raises(ManifestError, match="unknown field.*pre_event_mode"):
        Manifest.parse(canonical_json(marker) + b"\n")
