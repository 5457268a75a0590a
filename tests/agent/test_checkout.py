"""Officer check-out on the device: the badge table, the assignment with its audit lines and state file, and
the dock rule that ends a shift."""

from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.badgetable import BadgeTable, BadgeTableError, normalise_uid, parse_badges
from agent.checkout import STATE_FILE, Checkout
from agent.dock import DockWatch
from evidence import audit
from evidence.audit import AuditLog, verify_log

BADGES = '''
# provisioned by the back office: badge UID = pseudonymous officer id
[badges]
"04a1b2c3d4e5f6" = "ko-17"
"08:11:22:33" = "ko-23"
'''


def test_the_badge_table_maps_uids_to_pseudonyms():
    assert parse_badges(BADGES, "badges.toml") == {"04a1b2c3d4e5f6": "ko-17", "08112233": "ko-23"}
    assert normalise_uid("04:A1:B2:C3:D4:E5:F6") == "04a1b2c3d4e5f6"
    assert normalise_uid("0411") is None and normalise_uid("zz112233") is None


@pytest.mark.parametrize("text, complaint", [
    ('[badges]\n"04a1b2c3d4e5f6" = "Erika Mustermann"\n', "must be a pseudonymous id"),  # never a name
    ('[badges]\n"04a1" = "ko-17"\n', "is not a UID"),
    ('[badges]\n"08112233" = "ko-1"\n"08:11:22:33" = "ko-2"\n', "listed twice"),
    ('[officers]\n', "exactly one [badges] table"),
    ('[badges\n', "not valid TOML"),
])
def test_a_wrong_badge_table_names_the_entry(text, complaint):
    with pytest.raises(BadgeTableError, match="badges.toml: .*" + complaint.replace("[", r"\[")):
        parse_badges(text, "badges.toml")


def test_the_badge_table_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "badges.toml"
    table = BadgeTable(path)
    with pytest.raises(BadgeTableError, match="no badge table"):
        table.officer("08112233")
    path.write_text(BADGES)
    assert table.officer("08112233") == "ko-23" and table.officer("0badc0de") is None
    path.write_text(BADGES.replace("ko-23", "ko-99") + '"0badc0de" = "ko-5"\n')
    os.utime(path, ns=(1, 1))  # a change within the same tick still changes the size
    assert table.officer("08112233") == "ko-99" and table.officer("0badc0de") == "ko-5"
    path.write_text("[badges]\n\"0badc0de\" = \"Max\"\n")
    with pytest.raises(BadgeTableError):
        table.officer("0badc0de")  # a damaged table assigns nobody, not by its old contents


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def desk(tmp_path, key):
    (tmp_path / "badges.toml").write_text(BADGES)
    log = AuditLog(tmp_path / "audit.jsonl", key)
    checkout = Checkout(tmp_path / "state", log, BadgeTable(tmp_path / "badges.toml"))
    (tmp_path / "state").mkdir()
    yield checkout, log
    log.close()


def lines(tmp_path):
    return [json.loads(x) for x in (tmp_path / "audit.jsonl").read_bytes().splitlines()]


def test_a_badge_assigns_its_officer_and_every_later_audit_line_names_them(tmp_path, key, desk):
    checkout, log = desk
    assert checkout.badge("04a1b2c3d4e5f6") == "ko-17"
    assert checkout.officer == "ko-17" and checkout.assignment.via == "badge"
    log.append(audit.RECORDING_STARTED, incident_id="i1", trigger="button")
    assert checkout.badge("04a1b2c3d4e5f6") == "ko-17"  # the same badge again changes nothing
    assert checkout.badge("08112233") == "ko-23"  # the next officer's badge replaces the assignment
    log.append(audit.RECORDING_STOPPED, incident_id="i1", reason="button")
    assert checkout.unassign("command", command_id="c9") is None
    log.append(audit.AGENT_STOPPING)
    got = [(e["event"], e["fields"].get("officer"), e["fields"].get("via"), e["fields"].get("previous"))
           for e in lines(tmp_path)[1:]]
    assert got == [(audit.OFFICER_ASSIGNED, "ko-17", "badge", None), (audit.RECORDING_STARTED, "ko-17", None, None),
                   (audit.OFFICER_ASSIGNED, "ko-23", "badge", "ko-17"), (audit.RECORDING_STOPPED, "ko-23", None, None),
                   (audit.OFFICER_UNASSIGNED, "ko-23", "command", None), (audit.AGENT_STOPPING, None, None, None)]
    assert lines(tmp_path)[-2]["fields"]["command_id"] == "c9"
    assert verify_log(tmp_path / "audit.jsonl", key.public_key()).ok
    assert json.loads((tmp_path / "state" / STATE_FILE).read_text())["officer"] is None


def test_an_unknown_badge_is_refused_audited_and_shown_for_a_moment(tmp_path, desk):
    checkout, _ = desk
    checkout.assign("ko-17", "command")
    clock = [0.0]
    checkout._monotonic = lambda: clock[0]
    assert checkout.badge("0badc0de") is None
    assert checkout.officer == "ko-17" and checkout.notice() == "badge_unknown"
    clock[0] += 10
    assert checkout.notice() is None
    refused = lines(tmp_path)[-1]
    assert refused["event"] == audit.BADGE_REFUSED and refused["fields"]["uid"] == "0badc0de"
    assert refused["fields"]["officer"] == "ko-17"  # written while ko-17 is assigned
    (tmp_path / "badges.toml").unlink()
    assert checkout.badge("04a1b2c3d4e5f6") is None and "no badge table" in lines(tmp_path)[-1]["fields"]["reason"]


def test_the_assignment_survives_a_restart(tmp_path, key, desk):
    checkout, log = desk
    checkout.badge("08112233")
    log.close()
    log = AuditLog(tmp_path / "audit.jsonl", key)  # the agent starts again (a crash, a flat battery)
    again = Checkout(tmp_path / "state", log)
    log.append(audit.AGENT_STARTED, version="x")
    again.restore()
    log.append(audit.RECORDING_STARTED, incident_id="i2", trigger="button")
    log.close()
    assert again.officer == "ko-23" and again.assignment.via == "restored"
    tail = [(e["event"], e["fields"].get("officer"), e["fields"].get("via")) for e in lines(tmp_path)[-3:]]
    assert tail == [(audit.AGENT_STARTED, None, None), (audit.OFFICER_ASSIGNED, "ko-23", "restored"),
                    (audit.RECORDING_STARTED, "ko-23", None)]


def test_a_damaged_state_file_starts_unassigned(tmp_path, desk):
    checkout, _ = desk
    (tmp_path / "state" / STATE_FILE).write_text('{"officer": "Max Mustermann"}')
    checkout.restore()
    assert checkout.officer is None
    (tmp_path / "state" / STATE_FILE).write_text("{broken")
    checkout.restore()
    assert checkout.officer is None


def test_an_assignment_the_audit_log_refuses_changes_nothing(tmp_path, desk):
    checkout, log = desk
    checkout.assign("ko-17", "badge")
    log.close()  # the card is gone
    assert "audit log" in checkout.assign("ko-23", "command")
    assert "audit log" in checkout.unassign("dock")
    assert checkout.officer == "ko-17"
    assert json.loads((tmp_path / "state" / STATE_FILE).read_text())["officer"] == "ko-17"
    assert checkout.assign("Erika Mustermann", "command") == "'Erika Mustermann' is no officer id"


class Clock:
    t = 100.0

    def __call__(self):
        return self.t


def test_the_shift_ends_in_the_dock_once_idle_and_delivered():
    clock = Clock()
    watch = DockWatch(10.0, clock)
    delivered = [False]
    asked = []

    def is_delivered():
        asked.append(clock.t)
        return delivered[0]

    assert not watch.shift_over(True, False, is_delivered)  # just put in
    clock.t += 11
    assert not watch.shift_over(True, True, is_delivered)  # still sealing a recording
    assert not watch.shift_over(True, False, is_delivered)  # the back office has not got everything yet
    delivered[0] = True
    assert watch.shift_over(True, False, is_delivered)
    assert not watch.shift_over(True, False, is_delivered)  # once per stay in the dock
    assert asked == [111.0, 111.0]  # the spool is looked at only when everything else says "over"
    watch.shift_over(False, False, is_delivered)  # taken out: re-armed
    watch.shift_over(True, False, is_delivered)
    clock.t += 5
    watch.shift_over(False, False, is_delivered)  # out again before dock_seconds: no shift end
    watch.shift_over(True, False, is_delivered)
    clock.t += 9
    assert not watch.shift_over(True, False, is_delivered)
    clock.t += 1
    assert watch.shift_over(True, False, is_delivered)


def test_an_officer_assigned_in_the_dock_is_not_unassigned_by_that_stay():
    clock = Clock()
    watch = DockWatch(10.0, clock)
    watch.shift_over(True, False, lambda: False)
    watch.assigned_here()  # the next shift badged in before taking the device out
    clock.t += 60
    assert not watch.shift_over(True, False, lambda: True)
    watch.try_again()
    assert watch.shift_over(True, False, lambda: True)
