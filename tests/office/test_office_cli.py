"""`bodycam-office` lifecycle commands, run in-process against the test database, and the audit verifier
detecting every kind of tampering with the office log."""

from __future__ import annotations

import json
import os
import pwd
from datetime import timedelta, timezone

import pytest

from backoffice.cli import main


@pytest.fixture
def cli_world(office_settings, frames_30):
    """Settings point at the world's store, key and log; one incident is stored and cataloged."""
    office_settings.record_incident("inc-1", frames_30)
    return office_settings


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
    main(["user", "dana", "--role", "data-protection"])
    capsys.readouterr()
    assert main(["report", "expiring", "--days", "0", "--json", "--by", "dana"]) == 0  # data from 2025: overdue
    rows = json.loads(capsys.readouterr().out)
    assert [(r["incident"], r["overdue"]) for r in rows] == [("kod-07/inc-1", True)]
    assert main(["retention", "run"]) == 0
    capsys.readouterr()
    assert main(["report", "deletions", "--days", "1", "--by", "dana"]) == 0
    out = capsys.readouterr().out
    assert "kod-07/inc-1" in out and "3 segment(s)" in out and "decided by retention timer" in out
    assert main(["report", "expiring", "--days", "-1", "--by", "dana"]) == 2


def _audit(world) -> list[tuple[str, dict]]:
    return [(d["event"], d["fields"]) for d in map(json.loads, world.log_path.read_text().splitlines())]


def test_the_access_and_subject_reports_through_the_command_and_each_reading_is_recorded(cli_world, capsys):
    from django.contrib.auth.models import User

    from backoffice.catalog.models import Access, Incident
    from backoffice.catalog.office import open_office
    from backoffice.office_cli import cli_via

    main(["ingest"])
    for name, role in (("dana", "data-protection"), ("rita", "reviewer"), ("olga", "officer")):
        main(["user", name, "--role", role])
    inc = Incident.objects.get()
    capsys.readouterr()
    assert main(["report", "access", "kod-07/inc-1", "--by", "dana"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "  no access, hold, decision or deletion recorded"
    office = open_office(cli_world.store, cli_world.root / "keys" / "office.key", cli_world.log_path)
    with office.log:  # what the web app does when a reviewer watches the video
        Access.open(office, user=User.objects.get(username="rita"), incident=inc, kind=Access.PLAYBACK,
                    purpose="Anzeige 3/2025", via="web 10.0.0.5")
    main(["hold", "kod-07/inc-1", "--case", "OWi 1/25", "--reason", "complaint", "--by", "rita"])
    capsys.readouterr()

    assert main(["report", "access", "kod-07/inc-1", "--by", "dana"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("incident kod-07/inc-1 at duisburg")
    assert "access            rita" in out and "'Anzeige 3/2025' via web 10.0.0.5" in out
    assert "hold_placed       rita" in out and "'OWi 1/25: complaint'" in out and f"via {cli_via()}" not in out
    assert main(["report", "access", "kod-07/inc-1", "--by", "dana", "--json"]) == 0
    assert [r["event"] for r in json.loads(capsys.readouterr().out)] == ["access", "hold_placed"]

    start = inc.start.isoformat()  # UTC; the same instant written in German summer time:
    local = inc.start.astimezone(timezone(timedelta(hours=2)))
    assert main(["report", "subject", "--site", "duisburg", "--from", local.isoformat(), "--to", local.isoformat(),
                 "--by", "dana"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"kod-07/inc-1  officer unknown  {start}")
    assert "hold 1: OWi 1/25 'complaint', placed by rita" in out and "playback  by rita 'Anzeige 3/2025'" in out
    assert main(["report", "subject", "--site", "duisburg", "--from", start, "--to", start, "--by", "dana",
                 "--json"]) == 0
    assert [r["incident"] for r in json.loads(capsys.readouterr().out)] == ["kod-07/inc-1"]

    reads = [(f["kind"], f["parameters"], f["by"], f["via"]) for e, f in _audit(cli_world) if e == "report_read"]
    assert reads == [("access", {"incident": "kod-07/inc-1"}, "dana", cli_via())] * 3 + [
        ("subject", {"site": "duisburg", "from": start, "to": start}, "dana", cli_via()),
        ("subject", {"site": "duisburg", "from": start, "to": start}, "dana", cli_via())]

    assert main(["report", "access", "kod-07/inc-1", "--by", "olga"]) == 1  # an officer reads no reports
    assert "may not read reports" in capsys.readouterr().err
    assert _audit(cli_world)[-1][0] == "report_refused"


@pytest.mark.parametrize("args, message", [
    (["report", "subject", "--site", "duisburg", "--from", "2025-06-15T10:00", "--to", "2025-06-15T11:00Z"],
     "--from: '2025-06-15T10:00' has no time zone"),
    (["report", "subject", "--site", "duisburg", "--from", "yesterday", "--to", "2025-06-15T11:00Z"],
     "--from: Invalid isoformat string: 'yesterday'"),
    (["report", "subject", "--from", "2025-06-15T10:00Z", "--to", "2025-06-15T11:00Z"], "needs --site"),
    (["report", "access"], "needs the incident"),
    (["report", "access", "kod-07/nope"], "no incident"),
    (["report", "expiring", "--site", "duisburg"], "does not take --site"),
    (["report", "access", "kod-07/inc-1", "--days", "3"], "does not take --days"),
])
def test_a_report_with_bad_arguments_is_refused_and_records_nothing(cli_world, capsys, args, message):
    main(["ingest"])
    main(["user", "dana", "--role", "data-protection"])
    capsys.readouterr()
    assert main([*args, "--by", "dana"]) == 2
    assert message in capsys.readouterr().err
    assert "report_read" not in [e for e, _ in _audit(cli_world)]


def test_the_commands_check_the_named_user_and_record_the_os_account(cli_world, capsys):
    from django.contrib.auth.models import User

    from backoffice.office_cli import os_account

    main(["ingest"])
    main(["user", "rita", "--role", "reviewer"])
    main(["user", "rolf", "--role", "reviewer"])
    User.objects.filter(username="rolf").update(is_active=False)
    capsys.readouterr()
    hold = ["hold", "kod-07/inc-1", "--case", "OWi 1/25", "--reason", "complaint", "--by"]
    assert main([*hold, "ghost"]) == 2
    assert "no user 'ghost'" in capsys.readouterr().err
    assert main([*hold, "rolf"]) == 2
    assert "user 'rolf' is deactivated" in capsys.readouterr().err
    assert main(["report", "expiring", "--by", "rolf"]) == 2
    assert {e for e, _ in _audit(cli_world)} == {"log_created", "segment_cataloged", "user_changed"}  # nothing more
    assert main([*hold, "rita"]) == 0
    events = _audit(cli_world)
    assert events[-1] == ("hold_placed", {**events[-1][1], "by": "rita", "via": f"cli:{os_account()}"})
    assert {f.get("via") for e, f in events if e == "segment_cataloged"} == {f"cli:{os_account()}"}
    assert os_account() == pwd.getpwuid(os.getuid()).pw_name


def test_adding_people_and_roles_is_in_the_signed_log_with_who_typed_it(cli_world, capsys):
    from backoffice.office_cli import os_account

    assert main(["user", "rita", "--role", "reviewer"]) == 0
    assert main(["user", "rita", "--role", "supervisor"]) == 0
    assert main(["user", "rita", "--disable"]) == 0
    changes = [f for e, f in _audit(cli_world) if e == "user_changed"]
    assert [(f["user"], f["created"], f["roles_added"], f["roles"], f["disabled"], f["active"]) for f in changes] == [
        ("rita", True, ["reviewer"], ["reviewer"], False, True),
        ("rita", False, ["supervisor"], ["reviewer", "supervisor"], False, True),
        ("rita", False, [], ["reviewer", "supervisor"], True, False)]
    assert {f["via"] for f in changes} == {f"cli:{os_account()}"}
