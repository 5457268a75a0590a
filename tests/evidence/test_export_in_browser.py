"""The exported MP4 plays in a real browser: Debian's Chromium decodes its pictures and its sound and seeks in it.

The incident is the one of test_sound_segments.py (synthetic camera with its test tone, pre-event
ring, two cuts), sealed, verified and exported as a city's review would; the file is served from
127.0.0.1 with byte ranges, as any web server serves it (Chromium reads an MP4 whose index comes last
with range requests).
"""

import re
import threading
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evidence.export import export_incident
from evidence.keys import load_evidence_identities

from ..browser import chromium  # noqa: F401 (fixture)
from .test_sound_segments import recording  # noqa: F401 (fixture)

PAGE = """<!doctype html><meta charset="utf-8"><title>export</title>
<video id="v" src="incident.mp4" muted playsinline preload="auto"></video>"""


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single byte ranges (``Range: bytes=a-b``), which browsers use for media."""

    def send_head(self):
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match is None:
            return super().send_head()
        path = self.translate_path(self.path)
        try:
            f = open(path, "rb")
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        size = f.seek(0, 2)
        start = int(match[1])
        end = min(int(match[2]) if match[2] else size - 1, size - 1)
        if start > end:
            f.close()
            self.send_error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            return None
        f.seek(start)
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile):
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        while remaining > 0:
            chunk = source.read(min(65536, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)

    def log_message(self, format, *args):
        pass  # the test prints what it measures, not every request


@pytest.fixture
def served(tmp_path):
    """An http server on 127.0.0.1 for ``tmp_path``; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, name="TestHttpServer", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.system  # about 8 s: a browser start and 1.5 s of playing
def test_the_exported_mp4_plays_and_seeks_in_chromium_with_pictures_and_sound(env, recording, tmp_path,  # noqa: F811
                                                                              served, chromium):  # noqa: F811
    source, segments = recording
    env.seal_all(segments)
    export_incident([env.spool], devices=env.devices, identities=load_evidence_identities(env.identity),
                    out=tmp_path / "incident.mp4")
    (tmp_path / "index.html").write_text(PAGE)
    page = chromium.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{served}/index.html")
    page.wait_for_function("document.getElementById('v').readyState >= 1", timeout=20_000)
    duration = page.evaluate("document.getElementById('v').duration")
    page.evaluate("document.getElementById('v').play()")
    page.wait_for_function("document.getElementById('v').currentTime > 1.0", timeout=20_000)
    playing = page.evaluate("""() => { const v = document.getElementById('v');
        return {time: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames,
                audio_bytes: v.webkitAudioDecodedByteCount, error: v.error && v.error.message}; }""")
    target = duration - 0.3
    seeked = page.evaluate("""(target) => new Promise((resolve) => { const v = document.getElementById('v');
        v.addEventListener('seeked', () => resolve(v.currentTime), {once: true}); v.currentTime = target; })""",
                           target)
    page.wait_for_function("document.getElementById('v').ended", timeout=20_000)
    ended = page.evaluate("""() => { const v = document.getElementById('v');
        return {time: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames,
                audio_bytes: v.webkitAudioDecodedByteCount, error: v.error && v.error.message}; }""")
    page.close()
    print(f"Chromium: duration {duration:.3f} s; while playing {playing}; seeked to {seeked:.3f} s "
          f"(asked {target:.3f}); at the end {ended}")
    video_s = (segments[-1].end_pts_us - segments[0].start_pts_us) / 1e6
    assert errors == [] and playing["error"] is None and ended["error"] is None
    assert abs(duration - video_s) <= 0.05  # the pictures' 5.333 s (the sound is as long, within a frame)
    assert playing["time"] > 1.0 and playing["frames"] > 0  # time runs and pictures are decoded
    assert playing["audio_bytes"] > 0  # the sound track is decoded too
    assert abs(seeked - target) <= 0.05
    assert ended["frames"] > playing["frames"] and ended["audio_bytes"] > playing["audio_bytes"]
    assert abs(ended["time"] - duration) <= 0.05
