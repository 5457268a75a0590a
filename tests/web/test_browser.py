"""The review app in a real browser (Debian's Chromium via Playwright) against a live server on 127.0.0.1.

One flow, as the people of a city's back office would go through it: a reviewer signs in by keyboard,
finds an incident in the list, reads its page and places a hold; an officer proposes deleting her own
recording; a supervisor approves it; the data-protection officer sees those accesses and is refused
video (403). Along the way no page breaks its Content Security Policy, and the main pages are
photographed at 1366x768 for docs/screenshots (rewritten when UPDATE_SCREENSHOTS=1 or when missing).
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from tests.browser import launch_chromium

from .conftest import PASSWORD, audit, cast, frames_at, record

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


def test_the_review_flow_in_chromium(review, live, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    cast(review, passwords=True)
    seen = record(review, "2025-06-15-a", frames_at(0, 60, every=1.0), officer="olga", pre_event_frames=5)
    mistaken = record(review, "2025-06-15-b", frames_at(900, 30, every=1.0), officer="olga")
    record(review, "2025-06-15-c", frames_at(1800, 50, every=1.0), officer="otto", drop=(2,))
    record(review, "2025-06-15-d", frames_at(2700, 30, every=1.0), officer="otto", restart=True)
    review.clock.now = review.clock.now + timedelta(days=8)  # a week later: they expire soon
    shots, violations = Shots(tmp_path), []

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport=VIEWPORT, locale="de-DE")  # the office PCs; the server ignores it
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
        for who, incident in (("rita", "2025-06-15-a"), ("olga", "2025-06-15-b"), ("sue", "2025-06-15-b")):
            expect(log.locator("tr", has_text=who).filter(has_text=incident).first).to_be_visible()
        shots.take(page, "accesses")
        page.goto(f"{live}/incidents/{seen.pk}/")
        expect(page.get_by_role("button", name="Abspielen")).to_have_count(0)
        token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
        for action in ("play", "export"):
            response = page.request.post(f"{live}/incidents/{seen.pk}/{action}/",
                                         form={"csrfmiddlewaretoken": token, "purpose": "Kontrolle"})
            assert response.status == 403 and 'id="forbidden"' in response.text(), action
        page.get_by_role("button", name="English").click()
        expect(page.get_by_role("heading", name="Incident kod-07/2025-06-15-a")).to_be_visible()
        browser.close()

    assert violations == []
    refused = [(f["by"], f["kind"]) for e, f in audit(review) if e == "access_refused"]
    assert refused == [("dana", "playback"), ("dana", "export")]
    assert [e for e, _ in audit(review)].count("login") == 4
    shots.publish()
    assert re.match(r"^review-", shots.taken[0].name)
