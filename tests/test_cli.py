import sqlite3
import subprocess
import sys

import pytest

from agent.cli import main


def test_config_check_reports_ok(tmp_path, capsys):
    path = tmp_path / "agent.toml"
    path.write_text("[device]\nid = \"kod-07\"\nsite = \"duisburg\"\n")
    assert main(["config", "--check", str(path)]) == 0
    assert "OK (device duisburg/kod-07" in capsys.readouterr().out


def test_bad_config_exits_2_with_one_sentence_and_no_traceback(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text("[recording]\npre_event_seconds = 500\n")
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "config", "--check", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "recording.pre_event_seconds = 500.0 is out of range" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_example_is_printed(capsys):
    assert main(["config", "--example"]) == 0
    assert "pre_event_seconds = 30.0" in capsys.readouterr().out


@pytest.mark.system  # the whole demo in real time (~7 s); the bare-Debian test runs it too
def test_demo_records_seals_verifies_and_exports_in_real_time(tmp_path, capsys):
    code = main(["demo", "--width", "320", "--height", "240", "--pre-event", "1", "--standby", "1.5",
                 "--seconds", "2.5", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "continuous; frames lost: 0" in out and "frames decoded from the MP4" in out
    assert "(device public key only): OK" in out and ", final" in out
    assert list((tmp_path / "backoffice").glob("*.mp4")) and list((tmp_path / "backoffice" / "store").rglob("*.age"))
    assert "0 segment(s) left" in out  # deleted on the device only after the receipts
    assert (tmp_path / "display.gif").stat().st_size > 0
    # the local office cataloged every stored segment of the incident (before its receipt went out)
    incident = next(line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("incident "))
    catalog = tmp_path / "backoffice" / "office" / "catalog.sqlite3"
    assert f"catalog: {catalog}" in out
    with sqlite3.connect(catalog) as db:
        rows = db.execute("SELECT i.state, s.stem FROM catalog_incident i JOIN catalog_segment s "
                          "ON s.incident_id = i.id WHERE i.incident_id = ?", (incident,)).fetchall()
    stored = {p.name.removesuffix(".age") for p in (tmp_path / "backoffice" / "store").rglob("*.age")}
    assert {state for state, _ in rows} == {"active"} and {stem for _, stem in rows} == stored



@pytest.mark.parametrize("panel, pixels, size", [("st7789", "colour", (320, 240)), ("ssd1322", "grey", (256, 64)),
                                                 (None, "mono", (128, 64))])
def test_demo_emulates_the_panel_it_is_told(panel, pixels, size, tmp_path, monkeypatch):
    import agent.demo

    seen = []
    monkeypatch.setattr(agent.demo, "run_demo", lambda cfg, *args: seen.append(cfg) or 0)
    assert main(["demo", "--workdir", str(tmp_path), *(["--panel", panel] if panel else [])]) == 0
    display = agent.demo.emulated_display(seen[0], tmp_path).display
    assert display.driver == "emulator" and display.emulator_path == str(tmp_path / "display.gif")
    assert (display.pixels, (display.width, display.height)) == (pixels, size)
