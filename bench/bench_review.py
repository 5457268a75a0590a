"""The review app's playback: click to first frame, seek to minute 9, and concurrent viewers, for a long incident
with sound, through the whole chain: the review app under gunicorn on 127.0.0.1, a real key custodian process,
real sealed segments in a store, Debian's Chromium.

Reproduce:  .venv/bin/python bench/bench_review.py [--minutes 10] [--height 720] [--iterations 5] [--viewers 10]
                                                   [--watch 120]

The incident is made by the synthetic camera and microphone (H.264 at about 4 Mbit/s for 720p, AAC), cut into
10 s segments by the device's segmenter and sealed by its sealer; the catalog is migrated and ingests the
store; the custodian (``bodycam-office custodian``) and the app (``bodycam-office web``, 2 workers of 4
threads, as the systemd unit runs it) run as their own processes.

* **Click to first frame**: a reviewer on the incident page, purpose typed, clicks "Abspielen"; measured in
  Chromium from the click (a capture listener's timestamp) to the first picture presented
  (``requestVideoFrameCallback``) on the player page. Baselines in the same run: navigating to the incident
  page (a plain page), and stock ``age -d`` of the first segment (the decryption alone, process start included).
* **Seek to minute 9**: while it plays, ``currentTime = 540``; measured to the first picture presented at or
  after 540 s.
* **Concurrent viewers**: ``--viewers`` HTTP clients, each signed in as its own reviewer, each opening its own
  playback access and fetching pieces as the player does (30 s ahead of the playhead) while a simulated
  playhead advances in real time; a stall is the playhead reaching the end of what was fetched. Meanwhile
  one more viewer in Chromium watches too (its ``waiting`` events counted). Server CPU (gunicorn's
  processes and the custodian, from /proc) per viewer, against stock ``age -d`` of the same segments.
* **Export**: the court package of the whole incident downloaded over HTTP (first byte, total, size).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
PASSWORD = "Bench-Sichtung-2025!"
SITE, DEVICE = "bench", "kod-07"
AHEAD_S = 30.0  # as static/web/player.js

#: Before the page's scripts: when a button was clicked (kept across the form's navigation), and the player's
#: first presented picture and events.
WATCH = """
document.addEventListener("click", (e) => {
  if (e.target.closest("button")) sessionStorage.setItem("clickAt", String(performance.timeOrigin + performance.now()));
}, true);
window.__watch = {events: [], firstFrame: null};
document.addEventListener("DOMContentLoaded", () => {
  const video = document.getElementById("player");
  if (!video) return;
  for (const name of ["playing", "waiting", "seeking", "seeked", "ended", "error"]) {
    video.addEventListener(name, () => window.__watch.events.push([name, performance.now(), video.currentTime]));
  }
  video.requestVideoFrameCallback((now) => { window.__watch.firstFrame = performance.timeOrigin + now; });
});
"""

SEEK = """(target) => new Promise((resolve) => {
  const video = document.getElementById("player");
  const t0 = performance.now();
  let seeked = null;
  video.addEventListener("seeked", () => { seeked = performance.now() - t0; }, {once: true});
  const frame = (now, meta) => {
    if (meta.mediaTime < target - 0.05) { video.requestVideoFrameCallback(frame); return; }
    // the piece that holds the target, fetched after the seek (not found in the buffer)
    const piece = performance.getEntriesByType("resource").filter(e => e.name.includes("/pieces/") && e.startTime >= t0)[0];
    resolve({frame_ms: now - t0, seeked_ms: seeked, media: meta.mediaTime, piece: piece ? piece.name.split("/").pop() : null,
             piece_ms: piece ? piece.responseEnd - t0 : null});
  };
  video.requestVideoFrameCallback(frame);
  video.currentTime = target;
})"""


def make_incident(root: Path, minutes: float, width: int, height: int, bitrate: int) -> tuple[str, list[Path]]:
    """A sealed incident with sound in ``root/office/store``: (incident id, its .age files)."""
    from camera.frames import AudioPacket
    from camera.segmenter import Segmenter
    from camera.synthetic import SyntheticSource
    from evidence.chain import ChainState
    from evidence.keys import generate_device_key, generate_evidence_keys, load_recipients, load_signing_key
    from evidence.seal import Sealer

    for d in ("keys", "device", "state"):
        (root / d).mkdir()
    generate_evidence_keys(root / "keys")
    generate_device_key(root / "device", device_id=DEVICE)
    sealer = Sealer(device_id=DEVICE, site=SITE, recipients=load_recipients([root / "keys" / "evidence.pub"]),
                    signing_key=load_signing_key(root / "device" / "device.key"), chain=ChainState.load(root / "state"))
    incident = "20250615T080000Z-bench1"
    folder = root / "office" / "store" / SITE / DEVICE / incident
    folder.mkdir(parents=True)
    ages = []

    def seal(segment) -> None:
        sealed = sealer.seal(segment, clock_sync="ntp-synced")
        (folder / sealed.ciphertext_name).write_bytes(sealed.ciphertext)
        (folder / sealed.manifest_name).write_bytes(sealed.manifest)
        sealer.commit(sealed)
        ages.append(folder / sealed.ciphertext_name)

    source = SyntheticSource(width, height, 30.0, bitrate, 30, realtime=False, audio_bitrate=48_000)
    segmenter = Segmenter(source.info, 10.0, seal, audio=source.audio)
    frames = round(minutes * 60 * 30)
    segmenter.begin(incident)
    for item in source.media(frames, start_wall=1_749_974_400.0):
        if isinstance(item, AudioPacket):
            segmenter.add_audio(item)
        else:
            segmenter.add(item)
            if item.seq == frames - 1:
                segmenter.end()
    segmenter.flush()
    return incident, ages


def catalog(root: Path, viewers: int) -> int:
    """Migrate the catalog, ingest the store, add the reviewers; the incident's id in the catalog."""
    from backoffice.office.bootstrap import setup_django

    setup_django()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from backoffice.catalog.ingest import reconcile
    from backoffice.catalog.models import Incident
    from backoffice.catalog.office import open_office
    from evidence.keys import generate_office_key, load_device_public_keys

    (root / "office" / "keys").mkdir(parents=True)
    generate_office_key(root / "office" / "keys")
    call_command("migrate", interactive=False, verbosity=0)
    office = open_office(root / "office" / "store", root / "office" / "keys" / "office.key",
                         root / "office" / "audit" / "office-audit.jsonl")
    reconcile(office, load_device_public_keys([root / "device" / "device.pub"]))
    office.close()
    reviewers = Group.objects.get(name="reviewer")
    for i in range(viewers + 1):
        user = User.objects.create(username=f"rita{i}")
        user.set_password(PASSWORD)
        user.save()
        user.groups.add(reviewers)
    return Incident.objects.get().pk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_servers(root: Path, env: dict) -> tuple[subprocess.Popen, subprocess.Popen, str]:
    sock = root / "c.sock"
    custodian = subprocess.Popen([sys.executable, "-m", "backoffice.cli", "custodian", "--socket", str(sock),
                                  "--identity", str(root / "keys" / "evidence.key"),
                                  "--devices", str(root / "device" / "device.pub")],
                                 env=env, cwd=root, stderr=open(root / "custodian.log", "wb"))
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "backoffice.cli", "web", "--bind", f"127.0.0.1:{port}"],
                           env={**env, "BODYCAM_CUSTODIAN_SOCKET": str(sock)}, cwd=root,
                           stderr=open(root / "web.log", "wb"))
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2).read()
            if sock.exists():
                break
        except OSError:
            pass
        if time.monotonic() > deadline or web.poll() is not None or custodian.poll() is not None:
            raise SystemExit(f"the servers did not start: {(root / 'web.log').read_text()[-2000:]}"
                             f"{(root / 'custodian.log').read_text()[-2000:]}")
        time.sleep(0.2)
    return custodian, web, f"http://127.0.0.1:{port}"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and its children (gunicorn's arbiter and workers)."""
    out = [pid]
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p.name))
            except OSError:
                pass
    return out


def server_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total


def decrypted(root: Path) -> int:
    """``segment_decrypted`` lines in the office audit log so far (one per piece served)."""
    with open(root / "office" / "audit" / "office-audit.jsonl", "rb") as log:
        return sum(1 for line in log if b'"event":"segment_decrypted"' in line)


def age_decrypt(root: Path, path: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of stock ``age -d`` on one segment, into a pipe that is read and dropped."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    with subprocess.Popen([shutil.which("age"), "-d", "-i", str(root / "keys" / "evidence.key"), str(path)],
                          stdout=subprocess.PIPE) as p:
        while p.stdout.read(1 << 20):
            pass
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# -- Chromium ---------------------------------------------------------------------------------------------------

def sign_in(page, base: str, user: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Benutzername").fill(user)
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(f"{base}/")


def wait(page, condition: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(condition):
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {timeout:g} s: {condition}")
        page.wait_for_timeout(20)


def click_to_play(page, base: str, pk: int, purpose: str) -> dict:
    """From the incident page: the purpose, the click, the first picture; the first piece's timing."""
    page.goto(f"{base}/incidents/{pk}/")
    page.get_by_label("Zweck").fill(purpose)
    page.get_by_role("button", name="Abspielen").click()
    wait(page, "window.__watch && window.__watch.firstFrame !== null")
    return page.evaluate("""() => {
      const click = Number(sessionStorage.getItem("clickAt"));
      const nav = performance.getEntriesByType("navigation")[0];
      const pieces = performance.getEntriesByType("resource").filter(e => e.name.includes("/pieces/"));
      const first = pieces[0];
      return {first_frame_ms: window.__watch.firstFrame - click,
              page_ms: performance.timeOrigin + nav.responseEnd - click,
              piece_server_ms: first ? first.responseStart - first.requestStart : null,
              piece_transfer_ms: first ? first.responseEnd - first.responseStart : null,
              piece_done_ms: first ? performance.timeOrigin + first.responseEnd - click : null,
              piece_bytes: first ? first.encodedBodySize : null};
    }""")


def plain_page(page, base: str, pk: int) -> float:
    t = time.perf_counter()
    page.goto(f"{base}/incidents/{pk}/")
    return (time.perf_counter() - t) * 1e3


# -- HTTP viewers ----------------------------------------------------------------------------------------------

class Viewer(threading.Thread):
    """One reviewer watching in real time as the player fetches: pieces 30 s ahead of a simulated playhead."""

    def __init__(self, base: str, user: str, pk: int, watch_s: float, start: threading.Barrier):
        super().__init__(name=f"Viewer-{user}", daemon=True)
        self.base, self.user, self.pk, self.watch_s, self.start_barrier = base, user, pk, watch_s, start
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.startup_s = None
        self.stalls: list[float] = []
        self.fetch_s: list[float] = []
        self.bytes = 0
        self.error = None

    def _get(self, path: str) -> bytes:
        with self.opener.open(f"{self.base}{path}", timeout=120) as r:
            return r.read()

    def _post(self, path: str, fields: dict) -> str:
        data = urllib.parse.urlencode(fields).encode()
        with self.opener.open(urllib.request.Request(f"{self.base}{path}", data=data,
                                                     headers={"Referer": f"{self.base}{path}"}), timeout=120) as r:
            r.read()
            return r.geturl()

    def export(self) -> tuple[float, float, int]:
        """(seconds to the first byte, seconds in all, bytes) of the court package's download."""
        token = self._token(self._get("/login/"))
        self._post("/login/", {"csrfmiddlewaretoken": token, "username": self.user, "password": PASSWORD})
        token = self._token(self._get(f"/incidents/{self.pk}/"))
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "purpose": "bench export"}).encode()
        t = time.monotonic()
        request = urllib.request.Request(f"{self.base}/incidents/{self.pk}/export/", data=data,
                                         headers={"Referer": f"{self.base}/incidents/{self.pk}/"})
        with self.opener.open(request, timeout=600) as r:
            size = len(r.read(1))
            first = time.monotonic() - t
            while chunk := r.read(1 << 20):
                size += len(chunk)
        return first, time.monotonic() - t, size

    def _token(self, html: bytes) -> str:
        return re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1).decode()

    def run(self) -> None:
        try:
            token = self._token(self._get("/login/"))
            self._post("/login/", {"csrfmiddlewaretoken": token, "username": self.user, "password": PASSWORD})
            token = self._token(self._get(f"/incidents/{self.pk}/"))
            self.start_barrier.wait()
            t0 = time.monotonic()
            player = self._post(f"/incidents/{self.pk}/play/", {"csrfmiddlewaretoken": token, "purpose": "bench"})
            access = re.search(r"/playback/(\d+)/", player).group(1)
            timeline = json.loads(self._get(f"/playback/{access}/timeline.json"))
            self.watch(timeline["slots"], t0)
        except Exception as exc:  # reported with the results
            self.error = f"{type(exc).__name__}: {exc}"

    def watch(self, slots: list[dict], t0: float) -> None:
        """Fetch as the player does while a playhead advances in real time from the first piece on. A stall is
        the playhead reaching the end of what was fetched before the next piece arrived."""
        end = min(self.watch_s, slots[-1]["start_s"] + slots[-1]["duration_s"])
        buffered, played, since, k = 0.0, 0.0, None, 0  # fetched up to; the playhead at ``since``

        def head(now: float) -> float:
            return played if since is None else min(played + now - since, buffered)

        while True:
            pos = head(time.monotonic())
            if pos >= end - 1e-6:
                return
            if k < len(slots) and buffered - pos < AHEAD_S:
                t = time.monotonic()
                self.bytes += len(self._get(slots[k]["url"]))
                done = time.monotonic()
                self.fetch_s.append(done - t)
                if since is None:
                    self.startup_s, since = done - t0, done
                elif since + (buffered - played) < done:  # the playhead reached the buffer's end first
                    self.stalls.append(done - (since + buffered - played))
                    played, since = buffered, done
                buffered = slots[k]["start_s"] + slots[k]["duration_s"]
                k += 1
                continue
            wait_s = end - pos if k >= len(slots) else buffered - pos - AHEAD_S + 0.01
            time.sleep(min(0.5, max(0.01, wait_s)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--height", type=int, default=720, choices=[720, 1080])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--watch", type=float, default=120.0, help="seconds each concurrent viewer watches")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    width, bitrate = (1280, 4_000_000) if args.height == 720 else (1920, 8_000_000)
    root = Path(tempfile.mkdtemp(prefix="bench-review-", dir="/tmp"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "BODYCAM_OFFICE_DATA": str(root / "office"),
           "BODYCAM_OFFICE_DEVICES": str(root / "device" / "device.pub"),
           "BODYCAM_OFFICE_SECRET_KEY": "bench-only-" + "b" * 48, "BODYCAM_RECEIPT_PUB": str(root / "none.pub")}
    os.environ.update({k: env[k] for k in ("BODYCAM_OFFICE_DATA", "BODYCAM_OFFICE_SECRET_KEY")})
    procs = []
    try:
        t = time.perf_counter()
        incident, ages = make_incident(root, args.minutes, width, args.height, bitrate)
        size = sum(p.stat().st_size for p in ages)
        print(f"incident: {len(ages)} segments of 10 s with sound, {width}x{args.height}, "
              f"{size / 1e6:.0f} MB sealed ({size * 8 / (args.minutes * 60) / 1e6:.1f} Mbit/s), made in "
              f"{time.perf_counter() - t:.0f} s")
        pk = catalog(root, args.viewers)
        custodian, web, base = start_servers(root, env)
        procs = [web, custodian]
        print(f"review app {base} (gunicorn 2 workers x 4 threads), custodian {root / 'c.sock'}")

        from playwright.sync_api import sync_playwright

        ages_wall = [age_decrypt(root, ages[0])[0] for _ in range(args.iterations)]
        firsts, seeks, plains = [], [], []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1366, "height": 768})
                page.add_init_script(WATCH)
                sign_in(page, base, "rita0")
                plain_page(page, base, pk)  # warm: the first page of a fresh worker imports its views
                click_to_play(page, base, pk, "warm-up")
                for i in range(args.iterations):
                    plains.append(plain_page(page, base, pk))
                    first = click_to_play(page, base, pk, f"bench {i}")
                    firsts.append(first)
                    page.wait_for_timeout(1500)  # playing, the next pieces being fetched
                    seeks.append(page.evaluate(SEEK, 540.0 if args.minutes >= 10 else args.minutes * 54.0))
                    print(f"  run {i}: first frame {first['first_frame_ms']:.0f} ms (player page "
                          f"{first['page_ms']:.0f} ms, first piece {first['piece_bytes'] / 1e6:.1f} MB done at "
                          f"{first['piece_done_ms']:.0f} ms, server {first['piece_server_ms']:.0f} ms); seek to "
                          f"minute 9: picture after {seeks[-1]['frame_ms']:.0f} ms ({seeks[-1]['piece']} fetched by "
                          f"{seeks[-1]['piece_ms']:.0f} ms); plain page {plains[-1]:.0f} ms")

                ff = statistics.median(f["first_frame_ms"] for f in firsts)
                sk = statistics.median(s["frame_ms"] for s in seeks)
                pl, ag = statistics.median(plains), statistics.median(ages_wall) * 1e3
                print(f"click to first frame: median {ff:.0f} ms (max {max(f['first_frame_ms'] for f in firsts):.0f}); "
                      f"seek to minute 9: median {sk:.0f} ms (max {max(s['frame_ms'] for s in seeks):.0f}); "
                      f"baselines: plain page {pl:.0f} ms, age -d of one segment {ag:.0f} ms; "
                      f"ratios: first frame / plain page {ff / pl:.1f}, / age -d {ff / ag:.1f}")

                # -- concurrent viewers, and one more in Chromium ---------------------------------------------
                barrier = threading.Barrier(args.viewers + 1)
                viewers = [Viewer(base, f"rita{i + 1}", pk, args.watch, barrier) for i in range(args.viewers)]
                for v in viewers:
                    v.start()
                pids = tree(web.pid) + [custodian.pid]
                barrier.wait()
                cpu0, t0, pieces0 = server_cpu(pids), time.monotonic(), decrypted(root)
                page.goto(f"{base}/incidents/{pk}/")
                page.get_by_label("Zweck").fill("bench, watching with the others")
                page.get_by_role("button", name="Abspielen").click()
                wait(page, "window.__watch && window.__watch.firstFrame !== null")
                browser_first = page.evaluate("window.__watch.firstFrame - Number(sessionStorage.getItem('clickAt'))")
                for v in viewers:
                    v.join(args.watch + 300)
                wall, cpu, pieces = time.monotonic() - t0, server_cpu(pids) - cpu0, decrypted(root) - pieces0
                state = page.evaluate("""() => { const v = document.getElementById("player");
                    const q = v.getVideoPlaybackQuality();
                    return {time: v.currentTime, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
                            waiting: window.__watch.events.filter(e => e[0] === "waiting").length - 1,
                            events: window.__watch.events,
                            audio: v.webkitAudioDecodedByteCount}; }""")
            finally:
                browser.close()
        errors = [v.error for v in viewers if v.error]
        if errors:
            print(f"viewers failed: {errors}")
            return 1
        print(f"Chromium viewer's events (name, ms since its page started, media time): {state['events']}")
        stalls = [s for v in viewers for s in v.stalls]
        startups = [v.startup_s for v in viewers]
        fetches = [f for v in viewers for f in v.fetch_s]
        age_cpu = statistics.median(age_decrypt(root, p)[1] for p in ages[:5])
        per_viewer = cpu / wall / (args.viewers + 1) * 100  # the HTTP viewers and the one in Chromium
        print(f"{args.viewers} viewers at once, {args.watch:g} s each: first piece after {min(startups):.2f}-"
              f"{max(startups):.2f} s, pieces fetched in median {statistics.median(fetches) * 1e3:.0f} ms (max "
              f"{max(fetches) * 1e3:.0f} ms), stalls {len(stalls)} ({sum(stalls):.2f} s); Chromium beside them: "
              f"first frame {browser_first:.0f} ms, {state['waiting']} waiting event(s) after its start, "
              f"{state['frames']} frames ({state['dropped']} dropped), at {state['time']:.1f} s")
        print(f"server CPU (app and custodian): {cpu:.1f} s in {wall:.0f} s for {args.viewers + 1} viewers = "
              f"{per_viewer:.1f} % of one core per viewer; {pieces} pieces decrypted, {cpu / pieces * 1e3:.0f} ms "
              f"CPU per 10 s piece (stock age -d of a piece: {age_cpu * 1e3:.0f} ms CPU; ratio {cpu / pieces / age_cpu:.1f})")
        exporter = Viewer(base, "rita1", pk, 0, threading.Barrier(1))
        cpu0 = server_cpu(pids)
        first, total, size = exporter.export()
        print(f"export (court package) of the whole incident: first byte after {first:.2f} s, {size / 1e6:.0f} MB in "
              f"{total:.1f} s ({size / 1e6 / total:.0f} MB/s), server CPU {server_cpu(pids) - cpu0:.1f} s")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}")


if __name__ == "__main__":
    sys.exit(main())
