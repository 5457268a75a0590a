"""The court package: unpacked, its originals re-verify with `bodycam verify` as its README says, its MP4 decodes
cleanly in ffmpeg (-xerror) with picture and sound, its report names every hash, signature, receipt, access,
hold and decision (JSON and a PDF in German or English), and the export is logged; the command goes through the
same access, ticket and custodian. No plaintext is left on disk by playback or export."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from evidence.keys import generate_receipt_key, load_receipt_signing_key
from tests.evidence.conftest import AGE

from .conftest import REPO, scan_for_plaintext, store_receipts

FFMPEG, FFPROBE, PDFTOTEXT = shutil.which("ffmpeg"), shutil.which("ffprobe"), shutil.which("pdftotext")


def _log(world) -> list[tuple[str, dict]]:
    return [(d["event"], d["fields"]) for d in map(json.loads, world.log_path.read_text().splitlines())]


@pytest.fixture
def case(world, frames_30, sound_segments, tmp_path):
    """inc-1 (pictures only, seq 1-3) then inc-av (with sound, seq 4-6, receipts); on inc-av: a hold, a proposal,
    a reviewer who watched it; the receipt key in tmp_path/receipt.pub."""
    from backoffice.catalog.models import Access, Incident

    world.record_incident("inc-1", frames_30)
    sealed = world.store_segments(sound_segments)
    generate_receipt_key(tmp_path)
    store_receipts(world, sealed, load_receipt_signing_key(tmp_path / "receipt.key"))
    world.ingest()
    inc = Incident.objects.get(incident_id="inc-av")
    inc.officer = "olga"
    inc.save()
    rita, sven = world.user("rita", "reviewer"), world.user("sven", "supervisor")
    world.user("olga", "officer")
    world.user("dana", "data-protection")
    inc.place_hold(world.office, by=sven, case_reference="123 Js 45/25", reason="Anzeige wegen Beleidigung")
    inc.holds.first().propose_release(world.office, by=rita, reason="Verfahren eingestellt")
    Access.open(world.office, user=rita, incident=inc, kind=Access.PLAYBACK, purpose="Sichtung nach Beschwerde")
    return inc, sealed


def _export(world, custodian, inc, tmp_path, lang="de", purpose="StA Duisburg 123 Js 45/25"):
    from django.contrib.auth.models import User

    from backoffice.catalog.models import Access
    from backoffice.custody.client import CustodianClient
    from backoffice.custody.package import court_package
    from backoffice.custody.ticket import issue_ticket

    access = Access.open(world.office, user=User.objects.get(username="rita"), incident=inc, kind=Access.EXPORT,
                         purpose=purpose)
    ticket = issue_ticket(world.office, access)
    blocks = list(court_package(world.office, access, ticket, CustodianClient(custodian.socket),
                                devices=world.env.devices, receipt_pub=tmp_path / "receipt.pub", lang=lang))
    return access, blocks


def _unpack(data: bytes, into: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        z.extractall(into)
    (top,) = into.iterdir()
    return top


def _age(world, path: Path) -> bytes:
    return subprocess.run([AGE, "-d", "-i", str(world.env.identity), str(path)], check=True,
                          capture_output=True).stdout


@pytest.mark.skipif(FFMPEG is None or FFPROBE is None, reason="stock ffmpeg/ffprobe not installed (Debian ffmpeg)")
def test_the_package_reverifies_decodes_and_tells_the_whole_chain_of_custody(world, case, custodian, tmp_path):
    inc, sealed = case
    access, blocks = _export(world, custodian, inc, tmp_path)
    data = b"".join(blocks)
    assert len([b for b in blocks if b]) > 3  # made and handed on piece by piece, not at once
    top = _unpack(data, tmp_path / "unpacked")
    assert top.name == "kod-07-inc-av"
    doc = json.loads((top / "chain-of-custody.json").read_text())

    # the README's command, run as an expert would (bodycam verify), accepts the originals
    readme = (top / "README.txt").read_text()
    command = doc["verification"]["command"]
    assert " ".join(command) in readme and command[:2] == ["bodycam", "verify"] and "--first-seq" in command
    verified = subprocess.run([sys.executable, "-m", "agent.cli", *command[1:]], cwd=top, capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OK: 3 of 3 segment(s) verified" in verified.stdout

    # the MP4 decodes cleanly, picture and sound
    mp4 = top / "incident.mp4"
    decoded = subprocess.run([FFMPEG, "-v", "error", "-xerror", "-i", str(mp4), "-f", "null", "-"],
                             capture_output=True, text=True, timeout=120)
    assert decoded.returncode == 0 and not decoded.stderr, decoded.stderr
    streams = json.loads(subprocess.run([FFPROBE, "-v", "error", "-show_streams", "-of", "json", str(mp4)],
                                        check=True, capture_output=True, text=True).stdout)["streams"]
    assert sorted(s["codec_name"] for s in streams) == ["aac", "h264"]
    import av

    with av.open(str(mp4)) as container:
        pictures = sum(1 for _ in container.decode(video=0))
    assert pictures == sum(m["frame_count"] for m in doc["segments"]) == 160

    # every file is named in SHA256SUMS with its hash
    sums = dict(reversed(line.split("  ", 1)) for line in (top / "SHA256SUMS").read_text().splitlines())
    files = {str(p.relative_to(top)) for p in top.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert set(sums) == files
    assert all(hashlib.sha256((top / name).read_bytes()).hexdigest() == digest for name, digest in sums.items())

    # the report: every segment's hashes, signature and receipt, the plaintext stock age gives, the MP4's hash
    assert doc["verification"]["ok"] and doc["mp4"]["sha256"] == hashlib.sha256(mp4.read_bytes()).hexdigest()
    for row, s in zip(doc["segments"], sealed):
        manifest = json.loads(s.manifest)
        assert (row["stem"], row["manifest_sha256"], row["ciphertext_sha256"], row["signature"]) == (
            s.stem, s.manifest_sha256, s.ciphertext_sha256, manifest["signature"])
        assert row["receipt"]["manifest_sha256"] == s.manifest_sha256 and row["receipt"]["signature"]
        assert row["plaintext_sha256"] == hashlib.sha256(_age(world, top / "originals" / f"{s.stem}.age")).hexdigest()
        assert row["verified"] and row["catalog_verification"] == "verified" and row["included_in_mp4"]
    assert [(a["user"], a["kind"], a["purpose"]) for a in doc["accesses"]] == [
        ("rita", "playback", "Sichtung nach Beschwerde"), ("rita", "export", "StA Duisburg 123 Js 45/25")]
    assert doc["holds"][0]["case_reference"] == "123 Js 45/25" and doc["holds"][0]["placed_by"] == "sven"
    assert doc["decisions"][0]["kind"] == "hold_release" and doc["decisions"][0]["proposed_by"] == "rita"
    events = [line["event"] for line in doc["audit"]["lines"]]
    assert events.count("segment_cataloged") == 3 and events.count("segment_decrypted") == 3
    assert {"hold_placed", "decision_proposed", "access", "ticket_issued"} <= set(events)
    assert all(line["fields"].get("incident") != "kod-07/inc-1" for line in doc["audit"]["lines"])
    assert all(len(line["sig"]) == 88 for line in doc["audit"]["lines"])
    assert (top / "keys" / "devices" / "kod-07.pub").read_text().startswith("ed25519:")
    assert (top / "keys" / "office.pub").read_text() == world.office.signer.public.to_line() + "\n"

    # the export is logged: each decryption with its purpose, then the package with the hash of what was sent
    log = _log(world)
    decrypted = [f for e, f in log if e == "segment_decrypted" and f["access"] == access.pk]
    assert [f["stem"] for f in decrypted] == [s.stem for s in sealed]
    assert {(f["purpose"], f["kind"], f["by"]) for f in decrypted} == {("StA Duisburg 123 Js 45/25", "export", "rita")}
    (exported,) = [f for e, f in log if e == "package_exported"]
    assert exported["zip_sha256"] == hashlib.sha256(data).hexdigest() and exported["bytes"] == len(data)
    assert exported["access"] == access.pk and exported["mp4_sha256"] == doc["mp4"]["sha256"]

    if PDFTOTEXT:  # poppler-utils: read the PDF's words back
        text = subprocess.run([PDFTOTEXT, "-layout", str(top / "chain-of-custody.pdf"), "-"], check=True,
                              capture_output=True, text=True).stdout
        for words in ("Bericht zur Beweismittelkette", "Ergebnis der Prüfung: in Ordnung", "StA Duisburg 123 Js 45/25",
                      "123 Js 45/25", "Sichtung nach Beschwerde", "olga", "Abschnitt entschlüsselt",
                      doc["mp4"]["sha256"], sealed[0].ciphertext_sha256):
            assert words in text, words


@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext not installed (Debian poppler-utils)")
def test_the_report_and_readme_speak_english_when_asked(world, case, custodian, tmp_path):
    inc, _ = case
    _, blocks = _export(world, custodian, inc, tmp_path, lang="en", purpose="prosecutor's request 7/25")
    top = _unpack(b"".join(blocks), tmp_path / "unpacked")
    text = subprocess.run([PDFTOTEXT, "-layout", str(top / "chain-of-custody.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert "Chain-of-custody report" in text and "Result of the checks: in order" in text
    assert "Beweismittelkette" not in text and "prosecutor's request 7/25" in text
    assert "How to check the package" in (top / "README.txt").read_text()


def test_no_plaintext_touches_disk_during_playback_and_export(world, case, socket_dir, tmp_path, monkeypatch):
    """The custodian's and this (web-side) process's temporary directories, the data directory, the store, the
    audit log, the socket's directory: after watching and exporting, none holds picture or sound."""
    from datetime import datetime, timezone

    from django.conf import settings

    from .conftest import CustodianProcess
    from .test_media import _played

    inc, _ = case
    web_tmp, custodian_tmp = tmp_path / "web-tmp", tmp_path / "custodian-tmp"
    web_tmp.mkdir()
    custodian_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(web_tmp))
    monkeypatch.setenv("TMPDIR", str(custodian_tmp))
    world.clock.now = datetime.now(timezone.utc)
    custodian = CustodianProcess(world, socket_dir)
    custodian.start()
    try:
        _, pieces = _played(world, custodian, "inc-av")
        _, blocks = _export(world, custodian, inc, tmp_path)
    finally:
        custodian.stop()
    assert pieces and blocks  # the plaintext was there, in memory
    scanned = [world.root, socket_dir, web_tmp, custodian_tmp, settings.DATA_DIR]
    assert scan_for_plaintext(scanned) == []
    # the scan finds plaintext where there is some
    planted = custodian_tmp / "leak.bin"
    planted.write_bytes(pieces[0].data)
    assert scan_for_plaintext(scanned) == [str(planted)]
    disguised = web_tmp / "segment.age"  # a sealed segment's name does not hide plaintext
    disguised.write_bytes(pieces[1].data)
    assert scan_for_plaintext(scanned) == sorted([str(planted), str(disguised)])


def test_the_export_command_goes_through_access_ticket_and_custodian(world, case, custodian, tmp_path, monkeypatch,
                                                                      capsys):
    from django.conf import settings

    from backoffice.cli import main

    monkeypatch.setattr(settings, "BODYCAM_STORE_DIR", world.store)
    monkeypatch.setattr(settings, "BODYCAM_OFFICE_KEY", world.root / "keys" / "office.key")
    monkeypatch.setattr(settings, "BODYCAM_AUDIT_LOG", world.log_path)
    monkeypatch.setattr(settings, "BODYCAM_CUSTODIAN_SOCKET", custodian.socket)
    monkeypatch.setattr(settings, "BODYCAM_OFFICE_DEVICES", world.env.device / "device.pub")
    monkeypatch.setattr(settings, "BODYCAM_RECEIPT_PUB", tmp_path / "receipt.pub")
    out = tmp_path / "court.zip"
    args = ["export-package", "kod-07/inc-av", "--purpose", "Bußgeldstelle OWi 9/25", "--out", str(out)]
    assert main([*args, "--by", "dana"]) == 1  # the data-protection officer may not export video
    assert "refused" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--by", "olga"]) == 0  # the recording officer may
    top = _unpack(out.read_bytes(), tmp_path / "unpacked")
    doc = json.loads((top / "chain-of-custody.json").read_text())
    assert doc["export"]["by"] == "olga" and doc["export"]["via"].startswith("cli ")
    assert main([*args, "--by", "olga"]) == 2  # a court package is never overwritten
    assert "never overwritten" in capsys.readouterr().err
    log = _log(world)
    assert [(f["by"], f["kind"]) for e, f in log if e == "access_refused"] == [("dana", "export")]
    assert [f["by"] for e, f in log if e == "package_exported"] == ["olga"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".court.zip")]


def test_a_segment_that_fails_verification_is_left_out_of_the_mp4_and_named_in_the_report(world, case, custodian,
                                                                                           tmp_path):
    inc, sealed = case
    damaged = world.store / inc.store_path / f"{sealed[1].stem}.age"
    data = bytearray(damaged.read_bytes())
    data[100] ^= 0x01
    damaged.write_bytes(bytes(data))
    _, blocks = _export(world, custodian, inc, tmp_path)
    top = _unpack(b"".join(blocks), tmp_path / "unpacked")
    doc = json.loads((top / "chain-of-custody.json").read_text())
    assert not doc["verification"]["ok"]
    assert [(s["stem"], s["verified"], s["included_in_mp4"]) for s in doc["segments"]] == [
        (sealed[0].stem, True, True), (sealed[1].stem, False, False), (sealed[2].stem, True, True)]
    assert "does not match the manifest" in " ".join(doc["segments"][1]["problems"])
    assert doc["mp4"]["segments"] == [sealed[0].stem, sealed[2].stem]
    # the custodian was never asked for it, and the expert's check fails as it must
    assert sealed[1].stem not in [f["stem"] for e, f in _log(world) if e in ("segment_decrypted", "decryption_refused")]
    verified = subprocess.run([sys.executable, "-m", "agent.cli", *doc["verification"]["command"][1:]], cwd=top,
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert verified.returncode == 1 and "FAILED" in verified.stdout


@pytest.mark.skipif(FFMPEG is None, reason="stock ffmpeg not installed (Debian ffmpeg)")
def test_the_readmes_decode_check_passes_for_pictures_at_their_measured_times(world, custodian, tmp_path):
    """A camera's frames are not on an exact 30 fps grid (here 30.3 fps with every fifth frame 2 ms late, as a
    loaded machine or a real sensor gives them); the MP4 keeps those times, and the check the README gives the
    expert must still print nothing. (Stock ffmpeg's plain '-f null' rounds them to 1/30 s and complains about
    its own output.)"""
    import dataclasses

    from django.contrib.auth.models import User

    from backoffice.catalog.models import Access, Incident
    from backoffice.custody.client import CustodianClient
    from backoffice.custody.package import court_package
    from backoffice.custody.ticket import issue_ticket
    from tests.evidence.conftest import encode_h264

    frames = [dataclasses.replace(f, pts_us=i * 33_000 + (2_222 if i % 5 == 0 else 0))
              for i, f in enumerate(encode_h264(150))]
    world.record_incident("inc-jitter", frames)
    world.ingest()
    access = Access.open(world.office, user=world.user("rita", "reviewer"),
                         incident=Incident.objects.get(incident_id="inc-jitter"), kind=Access.EXPORT, purpose="Test")
    assert User.objects.filter(username="rita").exists()
    data = b"".join(court_package(world.office, access, issue_ticket(world.office, access),
                                  CustodianClient(custodian.socket), devices=world.env.devices))
    top = _unpack(data, tmp_path / "unpacked")
    line = next(ln for ln in (top / "README.txt").read_text().splitlines() if "ffmpeg " in ln)
    command = line[line.index("ffmpeg "):].split()
    decoded = subprocess.run([FFMPEG, *command[1:]], cwd=top, capture_output=True, text=True, timeout=120)
    assert decoded.returncode == 0 and decoded.stdout == decoded.stderr == "", decoded.stderr
    import av

    with av.open(str(top / "incident.mp4")) as container:
        times = [f.time for f in container.decode(video=0)]
    assert len(times) == 150 and times[5] - times[4] == pytest.approx(0.033 + 0.002222, abs=1e-4)  # as measured
