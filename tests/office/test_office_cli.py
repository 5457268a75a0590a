"""`bodycam-office` lifecycle commands, run in-process against the test database, and the audit verifier
detecting every kind of tampering with the office log."""

from __future__ import annotations

import json

import pytest

from backoffice.cli import main


@pytest.fixture
def cli_world(world, frames_30, monkeypatch):
    """Settings point at the world's store, key and log; one incident is stored and cataloged."""
    from django.conf import settings

    monkeypatch.setattr(settings, "BODYCAM_STORE_DIR", world.store)
    monkeypatch.setattr(settings, "BODYCAM_OFFICE_KEY", world.root / "keys" / "office.key")
    monkeypatch.setattr(settings, "BODYCAM_AUDIT_LOG", world.log_path)
    world.record_incident("inc-1", frames_30)
    world.office.close()  # the commands open the log themselves
    return world


def test_the_four_eyes_flow_through_the_commands(cli_world, capsys):
    assert main(["migrate"]) == 0
    assert main(["ingest", "--devices", str(cli_world.env.device / "device.pub")]) == 0
    assert "3 segment(s) added" in capsys.readouterr().out
    assert main(["user", "rita", "--role", "reviewer"]) == 0
    assert main(["user", "sven", "--role", "supervisor"]) == 0
    capsys.readouterr()
    assert main(["propose", "kod-07/inc-1", "--reason", "recorded by mistake", "--by", "rita"]) == 0
    decision = int(capsys.readouterr().out.split()[1])
    assert main(["approve", str(decision), "--by", "rita"]) == 1
    assert "self-approval" in capsys.readouterr().err
    assert main(["approve", str(decision), "--by", "sven"]) == 0
    assert main(["retention", "run", "--dry-run"]) == 0
    assert "would delete 0 incident(s)" in capsys.readouterr().out
    assert main(["audit", "verify", "--pub", str(cli_world.office_pub)]) == 0
    assert "OK" in capsys.readouterr().out


def test_hold_then_release_by_a_second_person_through_the_commands(cli_world, capsys):
    from backoffice.catalog.models import Hold

    main(["ingest"])
    main(["user", "rita", "--role", "reviewer"])
    main(["user", "sven", "--role", "supervisor"])
    capsys.readouterr()
    assert main(["hold", "kod-07/inc-1", "--case", "OWi 1/25", "--reason", "complaint", "--by", "rita"]) == 0
    hold = Hold.objects.get()
    assert main(["release", str(hold.pk), "--reason", "closed", "--by", "sven"]) == 0
    decision = int(capsys.readouterr().out.split("decision ")[1].split()[0])
    assert main(["approve", str(decision), "--by", "sven"]) == 1
    hold.refresh_from_db()
    assert hold.lifted_at is None
    assert main(["hold", "kod-07/nope", "--case", "x", "--reason", "y", "--by", "rita"]) == 2
    assert "no incident" in capsys.readouterr().err


def _log_after_some_steps(world) -> tuple[list[bytes], str]:
    from backoffice.catalog.ingest import reconcile
    from backoffice.catalog.office import open_office

    office = open_office(world.store, world.root / "keys" / "office.key", world.log_path, clock=world.clock)
    with office.log:
        reconcile(office)
        head = office.log.head
    return world.log_path.read_bytes().splitlines(keepends=True), f"{head.seq}:{head.hash}"


def _verify(world, *extra) -> int:
    return main(["audit", "verify", "--log", str(world.log_path), "--pub", str(world.office_pub), *extra])


def test_audit_verify_detects_an_edited_line(cli_world, capsys):
    lines, head = _log_after_some_steps(cli_world)
    assert _verify(cli_world, "--head", head) == 0
    doc = json.loads(lines[2])
    doc["fields"]["stem"] = "kod-07-000099"
    lines[2] = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    cli_world.log_path.write_bytes(b"".join(lines))
    assert _verify(cli_world) == 1
    assert "BAD at line 3" in capsys.readouterr().out


def test_audit_verify_detects_a_deleted_line(cli_world, capsys):
    lines, _ = _log_after_some_steps(cli_world)
    del lines[2]
    cli_world.log_path.write_bytes(b"".join(lines))
    assert _verify(cli_world) == 1
    assert "chain broken" in capsys.readouterr().out


def test_audit_verify_detects_truncation_against_a_noted_head(cli_world, capsys):
    lines, head = _log_after_some_steps(cli_world)
    cli_world.log_path.write_bytes(b"".join(lines[:-1]))
    assert _verify(cli_world) == 0  # the file alone cannot show a cut-off end ...
    assert _verify(cli_world, "--head", head) == 1  # ... the noted head can
    assert "truncated" in capsys.readouterr().out


def test_audit_verify_refuses_a_log_signed_by_another_key(cli_world, tmp_path, capsys):
    from evidence.keys import generate_office_key

    _log_after_some_steps(cli_world)
    (tmp_path / "other").mkdir()
    other = generate_office_key(tmp_path / "other")
    assert main(["audit", "verify", "--log", str(cli_world.log_path), "--pub", str(other.pub_path)]) == 1
    assert "signature invalid" in capsys.readouterr().out


def test_site_rule_through_the_command(cli_world, capsys):
    main(["ingest"])
    main(["user", "anna", "--role", "admin"])
    capsys.readouterr()
    assert main(["site", "duisburg"]) == 0
    assert "§ 15c PolG NRW" in capsys.readouterr().out
    assert main(["site", "duisburg", "--profile", "BW"]) == 2  # a change names the admin
    assert main(["site", "duisburg", "--period", "3mo", "--by", "anna"]) == 0
    out = capsys.readouterr().out
    assert "1 active incident(s)" in out and "3mo set by an admin" in out


def test_reports_through_the_command(cli_world, capsys):
    main(["ingest"])
    capsys.readouterr()
    assert main(["report", "expiring", "--days", "0", "--json"]) == 0  # the test data is from 2025: overdue
    rows = json.loads(capsys.readouterr().out)
    assert [(r["incident"], r["overdue"]) for r in rows] == [("kod-07/inc-1", True)]
    assert main(["retention", "run"]) == 0
    capsys.readouterr()
    assert main(["report", "deletions", "--days", "1"]) == 0
    out = capsys.readouterr().out
    assert "kod-07/inc-1" in out and "3 segment(s)" in out and "decided by retention timer" in out
    assert main(["report", "expiring", "--days", "-1"]) == 2
