"""The export action: with a stated purpose (required, logged), the court package is the download, streamed
while the custodian decrypts; unpacked, its originals re-verify with `bodycam verify` (exit 0) and its MP4,
picture and sound, decodes cleanly with `ffmpeg -xerror`."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from .conftest import audit, cast, signed_in

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]
FFMPEG = shutil.which("ffmpeg")


@pytest.fixture
def with_sound(review, sound_segments, custody):
    """inc-av: three segments with sound, olga's; the people of the cast."""
    from backoffice.catalog.models import Incident

    review.store_segments(sound_segments)
    review.ingest()
    incident = Incident.objects.get(incident_id="inc-av")
    incident.officer = "olga"
    incident.save(update_fields=["officer"])
    return cast(review), incident


@pytest.mark.skipif(FFMPEG is None, reason="stock ffmpeg is not installed (Debian ffmpeg)")
def test_the_downloaded_package_reverifies_and_its_mp4_decodes(review, with_sound, tmp_path):
    people, incident = with_sound
    response = signed_in(people["rita"]).post(f"/incidents/{incident.pk}/export/", {"purpose": "StA Duisburg 7 Js 1/25"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="court-package-kod-07-inc-av.zip"'
    blocks = list(response.streaming_content)
    assert len(blocks) > 3  # sent while it is made
    with zipfile.ZipFile(io.BytesIO(b"".join(blocks))) as package:
        package.extractall(tmp_path / "unpacked")
    top = tmp_path / "unpacked" / "kod-07-inc-av"
    readme = (top / "README.txt").read_text()
    command = next(line.strip() for line in readme.splitlines() if line.strip().startswith("bodycam verify"))
    verified = subprocess.run([sys.executable, "-m", "agent.cli", *command.split()[1:]], cwd=top, capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    decoded = subprocess.run([FFMPEG, "-v", "error", "-xerror", "-i", str(top / "incident.mp4"), "-f", "null", "-"],
                             capture_output=True, text=True, timeout=120)
    assert decoded.returncode == 0 and decoded.stdout == "" and decoded.stderr == "", decoded.stderr
    import av

    with av.open(str(top / "incident.mp4")) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]

    log = audit(review)
    (access,) = [f for e, f in log if e == "access" and f["kind"] == "export"]
    assert access["purpose"] == "StA Duisburg 7 Js 1/25" and access["by"] == "rita" and access["via"] == "web 127.0.0.1"
    (exported,) = [f for e, f in log if e == "package_exported"]
    assert exported["access"] == access["access"] and exported["bytes"] == sum(map(len, blocks))
    assert len([f for e, f in log if e == "segment_decrypted" and f["kind"] == "export"]) == 3


def test_an_export_needs_a_purpose(review, with_sound):
    people, incident = with_sound
    response = signed_in(people["rita"]).post(f"/incidents/{incident.pk}/export/", {"purpose": "  "}, follow=True)
    assert response.redirect_chain == [(f"/incidents/{incident.pk}/", 302)]
    assert "Abgelehnt: Ansehen oder Exportieren braucht einen angegebenen Zweck." in response.content.decode()
    log = audit(review)
    assert [(f["kind"], f["reason"]) for e, f in log if e == "access_refused"] == [
        ("export", "export needs a stated purpose")]
    assert not [e for e, _ in log if e in ("ticket_issued", "package_exported")]
