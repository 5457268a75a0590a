"""The legal profiles: what each German state's law says about body-worn cameras, as data with its sources.

The table is ``legal_profiles.toml`` beside this module, read by both programs: the device checks its
configuration against a profile's device rules (:mod:`agent.policy`), the back office takes a profile's
retention period (:mod:`backoffice.catalog.profiles`). Every rule carries its source, the date of the
text it cites and, where the maintainers could not check the statute's current text, what to confirm.
These are defaults with sources, not legal advice: a city whose lawyers decide otherwise chooses
``custom`` (:data:`CUSTOM`), which is no row of the table.

A rule's wording for people (:meth:`Rule.says`) is written here once per kind of rule, so a refusal,
the doctor and the documentation say the same thing.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import BodycamError

TABLE_FILE = Path(__file__).with_name("legal_profiles.toml")
#: The profile name meaning "no legal profile: the city's own settings, nothing refused".
CUSTOM = "custom"
#: When the pre-event ring may fill, strictest first: never, only while the front display announces it
#: (the mirror is on), in every standby. A profile allows its own and every stricter one.
PRE_EVENT_MODES = ("off", "announced", "standby")
#: Rules a device configuration can break (checked by agent.policy) and rules for the back office.
DEVICE_RULES = ("pre_event_mode", "pre_event_max_seconds", "sound", "visible_signal", "start_tone")
OFFICE_RULES = ("retention",)
RULES = DEVICE_RULES + OFFICE_RULES

_PERIOD = re.compile(r"(\d{1,4})(d|mo)|shift")
_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_NAME = re.compile(r"[a-z]{2,8}")


class LegalProfileError(BodycamError):
    """The profile table, a profile name or a retention period is malformed or unknown."""


def check_period(period: str) -> str:
    """A retention period as the table writes it: ``<n>d``, ``<n>mo`` or ``shift``."""
    if not isinstance(period, str) or not _PERIOD.fullmatch(period):
        raise LegalProfileError(f"retention period {period!r} must be '<n>d', '<n>mo' or 'shift'")
    return period


def period_parts(period: str) -> tuple[int, str] | None:
    """``(n, "d")`` or ``(n, "mo")`` for a period of days or calendar months; None for ``shift``."""
    match = _PERIOD.fullmatch(check_period(period))
    return None if period == "shift" else (int(match.group(1)), match.group(2))


def describe_period(period: str) -> str:
    parts = period_parts(period)
    if parts is None:
        return "at the end of the officer's shift"
    n, unit = parts
    return f"{n} {'day' if unit == 'd' else 'calendar month'}{'s' if n != 1 else ''} after the incident's end"


def _mode(v):
    return v in PRE_EVENT_MODES


def _seconds(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 120


def _bool(v):
    return isinstance(v, bool)


def _period(v):
    return isinstance(v, str) and _PERIOD.fullmatch(v) is not None


#: Each rule's value check and what its value means, in a sentence for people.
_KINDS = {
    "pre_event_mode": (_mode, "one of " + ", ".join(PRE_EVENT_MODES), {
        "off": "pre-recording is not allowed",
        "announced": "pre-recording only while the front display announces it to the person (mode 'announced')",
        "standby": "pre-recording in standby is allowed"}.__getitem__),
    "pre_event_max_seconds": (_seconds, "a whole number of seconds 0-120",
                              lambda v: f"pre-recording may hold at most {v} s"),
    "sound": (_bool, "true or false",
              lambda v: "sound may be recorded" if v else "sound may not be recorded"),
    "visible_signal": (_bool, "true or false",
                       lambda v: "a recording must be visibly signalled (the red LED)" if v
                       else "a visible signal is not required"),
    "start_tone": (_bool, "true or false",
                   lambda v: "a recording's start and stop must sound a tone" if v
                   else "a start tone is not required"),
    "retention": (_period, "'<n>d', '<n>mo' or 'shift'", lambda v: f"recordings are deleted {describe_period(v)}"),
}


@dataclass(frozen=True)
class Rule:
    """One rule of one profile: its value, where it comes from, and what is still to be confirmed."""

    name: str
    value: object
    source: str
    as_of: str
    confirm: str | None = None
    #: start_tone only: whether the tone is on when the city says nothing.
    default: bool | None = None

    def says(self) -> str:
        """What the rule means, e.g. "pre-recording may hold at most 30 s"."""
        return _KINDS[self.name][2](self.value)

    def citation(self) -> str:
        confirm = f"; confirm: {self.confirm}" if self.confirm else ""
        return f"{self.source} (as of {self.as_of}{confirm})"


@dataclass(frozen=True)
class LegalProfile:
    name: str  # what policy.profile names, e.g. "nrw"
    state: str  # Nordrhein-Westfalen
    code: str  # ISO 3166-2 subdivision code, the back office's profile name: NW
    law: str
    rules: dict[str, Rule]
    #: What is uncertain about the law's reach as a whole (e.g. whether it covers municipal staff).
    note: str | None = None

    def rule(self, name: str) -> Rule:
        return self.rules[name]

    def allows_pre_event_mode(self, mode: str) -> bool:
        return PRE_EVENT_MODES.index(mode) <= PRE_EVENT_MODES.index(self.rules["pre_event_mode"].value)

    def summary(self) -> str:
        """One line for the doctor and the status: the profile and its device rules."""
        r = self.rules
        tone = "required" if r["start_tone"].value else f"default {'on' if r['start_tone'].default else 'off'}"
        pre = r["pre_event_mode"].value
        return (f"{self.name} ({self.state}, {self.law}): pre-recording {pre}"
                + (f" up to {r['pre_event_max_seconds'].value} s" if pre != "off" else "")
                + f", sound {'allowed' if r['sound'].value else 'not allowed'}, "
                f"visible signal {'required' if r['visible_signal'].value else 'optional'}, start tone {tone}, "
                f"retention {r['retention'].value}")

    def confirms(self) -> list[str]:
        """Everything still to be confirmed against the statute's current text."""
        out = [f"{self.name}: {self.note}"] if self.note else []
        return out + [f"{self.name}.{rule.name}: {rule.confirm}" for rule in self.rules.values() if rule.confirm]


@cache
def profiles() -> dict[str, LegalProfile]:
    """Every profile of the table by its name (nrw, bw, by, he), checked once."""
    try:
        table = tomllib.loads(TABLE_FILE.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LegalProfileError(f"{TABLE_FILE}: cannot read the legal profile table ({exc})") from None
    return {name: _profile(name, row) for name, row in table.items()}


def _profile(name: str, row) -> LegalProfile:
    where = f"{TABLE_FILE.name} [{name}]"
    if not _NAME.fullmatch(name) or name == CUSTOM:
        raise LegalProfileError(f"{where}: a profile name is 2-8 lower-case letters and not {CUSTOM!r}")
    if not isinstance(row, dict):
        raise LegalProfileError(f"{where} must be a table")
    extra = set(row) - {"state", "code", "law", "note", *RULES}
    missing = [k for k in ("state", "code", "law", *RULES) if k not in row]
    if extra or missing:
        raise LegalProfileError(f"{where}: unknown key(s) {sorted(extra)} / missing {missing} (every profile "
                                f"states every rule: {', '.join(RULES)})")
    rules = {rule: _rule(f"{TABLE_FILE.name} [{name}.{rule}]", rule, row[rule]) for rule in RULES}
    return LegalProfile(name, row["state"], row["code"], row["law"], rules, row.get("note"))


def _rule(where: str, name: str, row) -> Rule:
    if not isinstance(row, dict):
        raise LegalProfileError(f"{where} must be a table")
    allowed = {"value", "source", "as_of", "confirm"} | ({"default"} if name == "start_tone" else set())
    if set(row) - allowed or not {"value", "source", "as_of"} <= set(row):
        raise LegalProfileError(f"{where}: keys must be value, source, as_of and optionally confirm"
                                + (", default" if name == "start_tone" else ""))
    check, expected, _ = _KINDS[name]
    if not check(row["value"]):
        raise LegalProfileError(f"{where}: value {row['value']!r} must be {expected}")
    if not isinstance(row["source"], str) or not row["source"].strip():
        raise LegalProfileError(f"{where}: every rule names its legal source")
    if not isinstance(row["as_of"], str) or not _DATE.fullmatch(row["as_of"]):
        raise LegalProfileError(f"{where}: as_of must be the cited text's date, YYYY-MM-DD")
    if name == "start_tone" and not isinstance(row.get("default", False), bool):
        raise LegalProfileError(f"{where}: default must be true or false")
    return Rule(name, row["value"], row["source"], row["as_of"], row.get("confirm"), row.get("default"))


def profile(name: str) -> LegalProfile:
    """The profile named ``name`` (not :data:`CUSTOM`, which is no row of the table)."""
    try:
        return profiles()[name]
    except KeyError:
        raise LegalProfileError(f"unknown legal profile {name!r} (known: {', '.join(profiles())}, or "
                                f"{CUSTOM!r})") from None


def profile_names() -> tuple[str, ...]:
    """What ``policy.profile`` may name: every profile of the table, then :data:`CUSTOM`."""
    return (*profiles(), CUSTOM)
