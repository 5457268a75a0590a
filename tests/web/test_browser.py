"""The review app in a real browser (Debian's Chromium via Playwright) against a live server on 127.0.0.1,
with a real key custodian process.

One flow, as the people of a city's back office would go through it: a reviewer signs in by keyboard,
finds an incident in the list, reads its page and places a hold; then finds the recording of a real upload
(``bodycam demo`` with sound: the agent sealed it, MQTT carried it to the local office's receiver), plays it
(the video's time advances, frames are decoded, sound too), seeks to its end, and exports it for court (the
download re-verifies with ``bodycam verify`` and its MP4 decodes cleanly); an officer proposes deleting
her own recording; a supervisor approves it; the data-protection officer sees those accesses and is
refused video (403, the player's URLs too). Afterwards no directory of the server holds plaintext. Along
the way no page breaks its Content Security Policy, and the main pages are photographed at 1366x768 for
docs/screenshots (rewritten when UPDATE_SCREENSHOTS=1 or when missing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.browser import launch_chromium
from tests.custody.conftest import scan_for_plaintext

from .conftest import PASSWORD, T0, audit, cast, custodian_for, frames_at, record

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture
def live(review):
    """The review app served by a thread on 127.0.0.1 (the same process, database and office clock)."""
    from django.test.testcases import LiveServerThread

    server = LiveServerThread("127.0.0.1", static_handler=lambda app: app)  # the app serves its own files
    server.daemon = True
    server.start()
    server.is_ready.wait(timeout=30)
    if server.error:
        raise server.error
    yield f"http://127.0.0.1:{server.port}"
    server.terminate()


DEMO_CONFIG = """\
[camera]
width = 320
height = 240
bitrate = 1000000
[audio]
enabled = true
[recording]
pre_event_seconds = 1.0
segment_seconds = 2.0
"""

#: Before the page's own scripts (Playwright's init script is not subject to the page's CSP): the player's
#: events and its first presented frame, for the test to read.
WATCH = """
window.__watch = {events: [], firstFrame: null, said: []};
document.addEventListener("DOMContentLoaded", () => {
  const video = document.getElementById("player");
  if (!video) return;
  const status = document.getElementById("player-status");  // every line the player said, not only the last
  new MutationObserver(() => window.__watch.said.push(status.textContent))
    .observe(status, {childList: true, characterData: true, subtree: true});
  for (const name of ["playing", "waiting", "seeking", "seeked", "ended", "error"]) {
    video.addEventListener(name, () => window.__watch.events.push([name, performance.now(), video.currentTime]));
  }
  video.requestVideoFrameCallback((now) => { window.__watch.firstFrame = now; });
});
"""


@pytest.fixture(scope="session")
def demo_upload(tmp_path_factory):
    """A real upload with sound: ``bodycam demo`` (synthetic camera and microphone, 2 s segments) uploads over
    MQTT to its local office, whose receiver stores and catalogs them; its work directory."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (.ci/dev installs it): the demo would not upload")
    root = tmp_path_factory.mktemp("demo")
    config = root / "demo.toml"
    config.write_text(DEMO_CONFIG)
    run = subprocess.run([sys.executable, "-m", "agent.cli", "demo", "--config", str(config), "--standby", "1.5",
                          "--seconds", "6", "--workdir", str(root / "work")], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0 and "0 segment(s) left" in run.stdout, run.stdout + run.stderr
    return root / "work"


def _take_in(review, demo: Path):
    """The demo's store as its receiver left it (segments, manifests, receipts), cataloged with its device key."""
    from backoffice.catalog.ingest import reconcile
    from backoffice.catalog.models import Incident
    from evidence.keys import load_device_public_keys

    shutil.copytree(demo / "backoffice" / "store" / "demo", review.store / "demo")
    reconcile(review.office, load_device_public_keys([review.env.device / "device.pub",
                                                      demo / "device" / "keys" / "device.pub"]))
    return Incident.objects.get(device__device_id="sim-0001")


def _wait(page, condition: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` (a JavaScript expression) in the page: Playwright's wait_for_function evaluates its
    predicate with eval, which the app's Content Security Policy forbids, as it should."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {condition}; player: {_player_state(page)}")
        page.wait_for_timeout(100)


def _player_state(page) -> dict:
    return page.evaluate("""() => {
      const v = document.getElementById("player"), q = v.getVideoPlaybackQuality();
      return {time: v.currentTime, duration: v.duration, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
              audio: v.webkitAudioDecodedByteCount, error: v.error && v.error.message, events: window.__watch.events,
              firstFrame: window.__watch.firstFrame, status: document.getElementById("player-status").textContent,
              said: window.__watch.said};
    }""")


class Shots:
    """Screenshots to a temporary directory; copied into docs/screenshots when asked or missing."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.taken: list[Path] = []

    def take(self, page, name: str) -> None:
        path = self.tmp / f"review-{name}.png"
        page.screenshot(path=str(path), full_page=False)
        assert path.stat().st_size > 5000, f"{name}: an empty picture?"
        self.taken.append(path)

    def publish(self) -> None:
        update = os.environ.get("UPDATE_SCREENSHOTS") == "1"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for path in self.taken:
            target = SCREENSHOTS / path.name
            if update or not target.exists():
                shutil.copyfile(path, target)


def _sign_in(page, base: str, name: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Benutzername").fill(name)
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(f"{base}/")


def _sign_out(page) -> None:
    page.get_by_role("button", name="Abmelden").click()
    page.wait_for_selector("text=Sie sind abgemeldet.")


def _csp_watch(page, violations: list) -> None:
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)


def test_the_review_flow_in_chromium(review, live, tmp_path, tmp_path_factory, demo_upload, socket_dir,
                                     monkeypatch):
    from django.conf import settings
    from playwright.sync_api import expect, sync_playwright

    from backoffice.catalog.models import Access

    # the server's own directories, scanned for plaintext at the end: its temporary directory and working
    # directory, the custodian's temporary directory (besides the data directory, store and audit log)
    web_tmp, web_cwd, custodian_tmp = (tmp_path / name for name in ("web-tmp", "web-cwd", "custodian-tmp"))
    for d in (web_tmp, web_cwd, custodian_tmp):
        d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(web_tmp))
    monkeypatch.chdir(web_cwd)
    downloads = tmp_path_factory.mktemp("downloads")  # the reviewer's PC, not the server

    cast(review, passwords=True)
    now = datetime.now(UTC)
    week_ago = (now - timedelta(days=8) - T0).total_seconds()  # recorded 8 days ago: they expire soon
    record(review, "2025-06-15-a", frames_at(week_ago, 60, every=1.0), officer="olga", pre_event_frames=5)
    mistaken = record(review, "2025-06-15-b", frames_at(week_ago + 900, 30, every=1.0), officer="olga")
    record(review, "2025-06-15-c", frames_at(week_ago + 1800, 50, every=1.0), officer="otto", drop=(2,))
    record(review, "2025-06-15-d", frames_at(week_ago + 2700, 30, every=1.0), officer="otto", restart=True)
    uploaded = _take_in(review, demo_upload)
    name, stems = str(uploaded), [s.stem for s in uploaded.segments.order_by("seq")]  # Django: not in Playwright's loop
    shots, violations = Shots(tmp_path_factory.mktemp("shots")), []

    with custodian_for(review, socket_dir, identity=demo_upload / "backoffice" / "evidence.key",
                       devices=[demo_upload / "device" / "keys" / "device.pub"],
                       receipt_pub=demo_upload / "backoffice" / "receipt-keys" / "receipt.pub",
                       env={"TMPDIR": str(custodian_tmp)}), sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport=VIEWPORT, locale="de-DE")  # the office PCs; the server ignores it
        page.add_init_script(WATCH)
        _csp_watch(page, violations)

        # --- the reviewer, by keyboard ---------------------------------------------------------------
        page.goto(f"{live}/")
        expect(page).to_have_url(f"{live}/login/?next=/")
        shots.take(page, "login")
        page.evaluate("document.activeElement.blur()")
        for _ in range(8):  # skip link, two language buttons, then the login fields
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.name") == "username":
                break
        assert page.evaluate("document.activeElement.name") == "username"
        page.keyboard.type("rita")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.name") == "password"
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{live}/")
        expect(page.get_by_role("heading", name="Übersicht")).to_be_visible()
        problems = page.locator("section", has=page.locator("#h-problems"))
        expect(problems).to_contain_text("Segment fehlt")
        expect(problems).to_contain_text("durch Neustart unterbrochen")
        shots.take(page, "dashboard")

        page.get_by_role("link", name="Vorfälle").first.click()
        page.get_by_label("Einsatzkraft").fill("olga")
        page.get_by_role("button", name="Anzeigen").click()
        rows = page.locator("table.list tbody tr")
        expect(rows).to_have_count(2)
        shots.take(page, "incidents")
        rows.filter(has_text="2025-06-15-a").get_by_role("link").click()
        expect(page.get_by_role("heading", name="Vorfall kod-07/2025-06-15-a")).to_be_visible()
        expect(page.locator("ul.verdict")).to_contain_text("Alle 6 Segmente sind echt")
        expect(page.locator("tr.has-pre")).to_contain_text("vor dem Auslösen")
        expect(page.get_by_role("button", name="Abspielen")).to_be_visible()
        shots.take(page, "incident")
        page.get_by_label("Aktenzeichen").fill("AZ 31/25 OWi")
        page.locator("#hold-reason").fill("Anzeige wegen Beleidigung")
        page.get_by_role("button", name="Sperre setzen").click()
        expect(page.locator(".messages")).to_contain_text("Löschsperre 1 gesetzt")
        expect(page.locator("dl.facts")).to_contain_text("als Beweismittel gesperrt (AZ 31/25 OWi)")

        # --- ... finds the demo's upload, plays it with sound, seeks to its end -------------------------
        page.get_by_role("link", name="Vorfälle").first.click()
        page.get_by_label("Gerät").fill("sim-0001")
        page.get_by_role("button", name="Anzeigen").click()
        expect(rows).to_have_count(1)
        rows.get_by_role("link").click()
        expect(page.get_by_role("heading", name=f"Vorfall {name}")).to_be_visible()
        expect(page.locator("ul.verdict")).to_contain_text("Alle 4 Segmente sind echt")
        page.get_by_label("Zweck").fill("Sichtung nach Beschwerde 12/2025")
        page.get_by_role("button", name="Abspielen").click()
        page.wait_for_url(re.compile(rf"{live}/playback/\d+/$"))
        _wait(page, "window.__watch.firstFrame !== null")
        _wait(page, "document.getElementById('player').currentTime > 0.5")
        early = _player_state(page)
        _wait(page, f"document.getElementById('player').currentTime > {early['time'] + 0.5}")
        expect(page.locator("#player-slots li.ready").first).to_be_visible()
        shots.take(page, "player")
        page.evaluate("() => { const v = document.getElementById('player'); v.currentTime = v.duration - 0.6; }")
        _wait(page, "window.__watch.events.some(e => e[0] === 'ended')")
        played = _player_state(page)
        print("played", json.dumps(played))
        assert played["error"] is None
        playback = int(re.search(r"/playback/(\d+)/", page.url).group(1))
        timeline = page.request.get(f"{live}/playback/{playback}/timeline.json").json()
        assert [slot["stem"] for slot in timeline["slots"]] == stems
        assert played["duration"] == pytest.approx(timeline["duration_s"], abs=0.1)
        assert played["time"] == pytest.approx(played["duration"], abs=0.1)  # at its end
        assert played["frames"] >= 30 and played["audio"] > 0  # pictures decoded, and sound
        assert [e[0] for e in played["events"]].count("seeked") >= 1
        for url in (f"/playback/{playback}/", f"/playback/{playback}/timeline.json"):
            assert page.request.get(f"{live}{url}").status == 200  # hers, in her session

        # --- ... and exports it for court --------------------------------------------------------------
        page.get_by_role("link", name="Zurück zum Vorfall").click()
        page.get_by_label("Zweck").fill("StA Duisburg 123 Js 45/25")
        with page.expect_download() as download:
            page.get_by_role("button", name="Exportieren (für Gericht)").click()
        package = downloads / download.value.suggested_filename
        download.value.save_as(package)
        assert package.name == f"court-package-sim-0001-{uploaded.incident_id}.zip"
        _sign_out(page)

        # --- the officer proposes deleting her mistaken recording ----------------------------------------
        _sign_in(page, live, "olga")
        page.goto(f"{live}/incidents/{mistaken.pk}/")
        page.locator("#deletion-reason").fill("versehentlich ausgelöst, niemand im Bild")
        page.get_by_role("button", name="Löschung vorschlagen").click()
        expect(page.locator(".messages")).to_contain_text("Vorzeitige Löschung vorgeschlagen (Entscheidung 1)")
        _sign_out(page)

        # --- the supervisor approves it ------------------------------------------------------------------
        _sign_in(page, live, "sue")
        waiting = page.locator("section", has=page.locator("#h-approve"))
        expect(waiting).to_contain_text("versehentlich ausgelöst")
        waiting.get_by_role("link", name="kod-07/2025-06-15-b").click()
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Bestätigen").click()
        expect(page.locator(".messages")).to_contain_text("Bestätigt: die Aufnahme ist gelöscht")
        expect(page.locator(".tombstone")).to_contain_text("entschieden von olga & sue")
        _sign_out(page)

        # --- the data-protection officer sees the accesses and gets no video --------------------------
        _sign_in(page, live, "dana")
        page.get_by_role("link", name="Zugriffsprotokoll").click()
        log = page.locator("table.list")
        for who, incident, what in (("rita", "2025-06-15-a", "Seite geöffnet"), ("rita", uploaded.incident_id, "abgespielt"),
                                    ("rita", uploaded.incident_id, "exportiert"),
                                    ("olga", "2025-06-15-b", "Seite geöffnet"), ("sue", "2025-06-15-b", "Seite geöffnet")):
            expect(log.locator("tr", has_text=who).filter(has_text=incident).filter(has_text=what).first).to_be_visible()
        shots.take(page, "accesses")
        page.goto(f"{live}/incidents/{uploaded.pk}/")
        expect(page.get_by_role("button", name="Abspielen")).to_have_count(0)
        token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
        for action in ("play", "export"):
            response = page.request.post(f"{live}/incidents/{uploaded.pk}/{action}/",
                                         form={"csrfmiddlewaretoken": token, "purpose": "Kontrolle"})
            assert response.status == 403 and 'id="forbidden"' in response.text(), action
        for url in (f"/playback/{playback}/", f"/playback/{playback}/timeline.json",
                    f"/playback/{playback}/pieces/{stems[0]}.mp4"):
            assert page.request.get(f"{live}{url}").status == 403, url  # rita's access is not hers
        page.get_by_role("button", name="English").click()
        expect(page.get_by_role("heading", name=f"Incident {name}")).to_be_visible()
        browser.close()

    assert violations == []
    log = audit(review)
    refused = [(f["by"], f["kind"]) for e, f in log if e == "access_refused"]
    assert refused == [("dana", "playback"), ("dana", "export")] + [("dana", "playback")] * 3
    assert [e for e, _ in log].count("login") == 4
    # every piece the browser fetched was decrypted by the custodian for rita's playback, with her purpose
    assert Access.objects.get(pk=playback).kind == Access.PLAYBACK
    decrypted = [f for e, f in log if e == "segment_decrypted" and f["access"] == playback]
    assert {f["stem"] for f in decrypted} == set(stems)
    assert {(f["by"], f["purpose"]) for f in decrypted} == {("rita", "Sichtung nach Beschwerde 12/2025")}

    # the download re-verifies as its README says, and its MP4 decodes cleanly
    with zipfile.ZipFile(package) as z:
        z.extractall(downloads / "unpacked")
    (top,) = (downloads / "unpacked").iterdir()
    command = json.loads((top / "chain-of-custody.json").read_text())["verification"]["command"]
    verified = subprocess.run([sys.executable, "-m", "agent.cli", *command[1:]], cwd=top, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert verified.returncode == 0 and "OK: 4 of 4 segment(s) verified" in verified.stdout, verified.stdout
    # as its README says: the demo's frames carry real capture times (tests/custody/test_package.py explains)
    line = next(ln for ln in (top / "README.txt").read_text().splitlines() if "ffmpeg -v error -xerror" in ln)
    decoded = subprocess.run(line[line.index("ffmpeg "):].split(), cwd=top, capture_output=True, text=True,
                             timeout=120)
    assert decoded.returncode == 0 and decoded.stdout == decoded.stderr == "", decoded.stderr

    # nothing decrypted on the server's disk: data directory, store, audit log, temporary and working directories
    scanned = [review.root, settings.DATA_DIR, socket_dir, web_tmp, web_cwd, custodian_tmp]
    assert scan_for_plaintext(scanned) == []
    assert list((review.store / "demo").rglob("*.age"))  # the store was scanned, with the demo's segments

    shots.publish()
    assert re.match(r"^review-", shots.taken[0].name)


def test_the_player_plays_past_a_missing_and_a_refused_segment(review, live, custody, frames_30):
    """Segments of 1/3 s: the second never arrived (a gap in the timeline), the fourth was damaged in the store
    (the custodian refuses it). The player says so, skips both and plays the rest to the end."""
    from playwright.sync_api import sync_playwright

    cast(review, passwords=True)
    incident = record(review, "inc-gaps", frames_at(0, 60), drop=(1,))
    stems = [s.stem for s in incident.segments.order_by("seq")]
    damaged = review.store / incident.store_path / f"{stems[2]}.age"  # the fourth segment (the second is missing)
    data = bytearray(damaged.read_bytes())
    data[-100] ^= 0x01
    damaged.write_bytes(bytes(data))

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport=VIEWPORT, locale="de-DE")
        page.add_init_script(WATCH)
        _sign_in(page, live, "rita")
        page.goto(f"{live}/incidents/{incident.pk}/")
        page.get_by_label("Zweck").fill("Prüfung der Wiedergabe")
        page.get_by_role("button", name="Abspielen").click()
        _wait(page, "window.__watch.events.some(e => e[0] === 'ended')")
        played = _player_state(page)
        failed = page.locator("#player-slots li.failed").count()
        browser.close()
    print("played", json.dumps(played))
    # The gap's line, said when the player skipped it (a slot still loading may have said its own since).
    assert played["error"] is None and failed == 1 and any("weiter bei 0:01" in line for line in played["said"])
    assert played["time"] == pytest.approx(played["duration"], abs=0.05) == pytest.approx(2.0, abs=0.05)
    assert 30 <= played["frames"] <= 40  # the four segments that play (40 frames), none of the skipped ones
    refused = [f for e, f in audit(review) if e == "decryption_refused"]
    assert [(f["stem"], f["code"]) for f in refused] == [(stems[2], "verification_failed")]
