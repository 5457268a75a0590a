"""The legal profile table both programs read: every rule sourced and dated, a malformed table refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from base import legal
from base.legal import (CUSTOM, DEVICE_RULES, OFFICE_RULES, PRE_EVENT_MODES, RULES, LegalProfileError,
                        describe_period, profile, profile_names, profiles)


def test_every_state_profile_states_every_rule_with_its_source_and_date():
    assert set(profiles()) == {"nrw", "bw", "by", "he"}
    assert profile_names()[-1] == CUSTOM and CUSTOM not in profiles()
    assert set(RULES) == set(DEVICE_RULES) | set(OFFICE_RULES)
    for p in profiles().values():
        assert set(p.rules) == set(RULES)
        for rule in p.rules.values():
            assert rule.source.strip() and len(rule.as_of) == 10
            assert rule.says()  # every kind of rule has its sentence
            assert rule.source in rule.citation() and rule.as_of in rule.citation()
    assert {p.code for p in profiles().values()} == {"NW", "BW", "BY", "HE"}


def test_nrw_pre_records_only_when_announced_and_keeps_14_days():
    nrw = profile("nrw")
    assert nrw.rule("pre_event_mode").value == "announced"
    assert [m for m in PRE_EVENT_MODES if nrw.allows_pre_event_mode(m)] == ["off", "announced"]
    assert nrw.rule("retention").value == "14d" and "§ 15c PolG NRW" in nrw.rule("retention").source
    assert "§ 15c Abs. 3" in nrw.rule("visible_signal").source
    assert nrw.rule("pre_event_mode").confirm  # uncertain rows say what to confirm
    assert "confirm:" in nrw.rule("pre_event_mode").citation()


def test_unknown_profile_and_periods_are_sentences():
    with pytest.raises(LegalProfileError, match="unknown legal profile 'xx'.*'custom'"):
        profile("xx")
    assert describe_period("14d") == "14 days after the incident's end"
    assert describe_period("1mo") == "1 calendar month after the incident's end"
    assert describe_period("shift") == "at the end of the officer's shift"


def _load(tmp_path, monkeypatch, text):
    path = tmp_path / "legal_profiles.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(legal, "TABLE_FILE", path)
    legal.profiles.cache_clear()
    try:
        return legal.profiles()
    finally:
        legal.profiles.cache_clear()


def _table(**changes) -> str:
    """The NRW profile as TOML, with some rule rows replaced (None drops the row)."""
    rows = {name: dict(value=r.value, source=r.source, as_of=r.as_of, **({"default": r.default}
                                                                          if r.default is not None else {}))
            for name, r in profile("nrw").rules.items()}
    rows.update(changes)
    out = ['[nrw]', 'state = "NRW"', 'code = "NW"', 'law = "x"']
    for name, row in rows.items():
        if row is None:
            continue
        out.append(f"[nrw.{name}]")
        for key, value in row.items():
            out.append(f"{key} = " + ("true" if value is True else "false" if value is False else
                                      f'"{value}"' if isinstance(value, str) else str(value)))
    return "\n".join(out) + "\n"


def test_the_rebuilt_table_loads(tmp_path, monkeypatch):
    assert _load(tmp_path, monkeypatch, _table())["nrw"].rules == profile("nrw").rules


@pytest.mark.parametrize("changes, message", [
    (dict(sound=None), "missing \\['sound'\\]"),
    (dict(pre_event_mode=dict(value="always", source="s", as_of="2020-01-01")), "must be one of off, announced"),
    (dict(pre_event_max_seconds=dict(value=600, source="s", as_of="2020-01-01")), "0-120"),
    (dict(retention=dict(value="2y", source="s", as_of="2020-01-01")), "'<n>d', '<n>mo' or 'shift'"),
    (dict(sound=dict(value=True, source=" ", as_of="2020-01-01")), "names its legal source"),
    (dict(sound=dict(value=True, source="s", as_of="2020")), "YYYY-MM-DD"),
    (dict(sound=dict(value=True, source="s", as_of="2020-01-01", default=True)), "keys must be"),
    (dict(noise=dict(value=True, source="s", as_of="2020-01-01")), "unknown key"),
])
def test_a_malformed_table_is_refused_with_the_row_named(tmp_path, monkeypatch, changes, message):
    with pytest.raises(LegalProfileError, match=message) as caught:
        _load(tmp_path, monkeypatch, _table(**changes))
    assert "[nrw" in str(caught.value)


# --- docs/DATA_PROTECTION.md lists the table as it is --------------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "DATA_PROTECTION.md"
BEGIN, END = "<!-- legal-profiles:begin", "<!-- legal-profiles:end -->"


def table_markdown() -> str:
    """The profiles as the data-protection officer reads them: a summary, then every rule with its source."""
    lines = ["| profile | state | pre-recording | at most | sound | visible signal | start tone | retention |",
             "|---|---|---|---|---|---|---|---|"]
    for p in profiles().values():
        r = p.rules
        tone = ("required" if r["start_tone"].value
                else f"not required (default {'on' if r['start_tone'].default else 'off'})")
        lines.append(f"| `{p.name}` | {p.state} ({p.code}) | {r['pre_event_mode'].value} | "
                     f"{r['pre_event_max_seconds'].value} s | {'allowed' if r['sound'].value else 'not allowed'} | "
                     f"{'required' if r['visible_signal'].value else 'not required'} | {tone} | "
                     f"{describe_period(r['retention'].value)} |")
    lines.append("| `custom` | any | as configured | 120 s (the hard maximum) | as configured | as configured | "
                 "as configured | the back office's setting for the site |")
    for p in profiles().values():
        lines += ["", f"**{p.name}**: {p.law}" + (f". **Confirm:** {p.note}" if p.note else ""), ""]
        lines += [f"* {r.name}: {r.says()}. {r.source} (as of {r.as_of})"
                  + (f". **Confirm:** {r.confirm}" if r.confirm else "") for r in p.rules.values()]
    return "\n".join(lines)


def test_the_data_protection_document_lists_the_table_as_it_is():
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    marker, rest = rest.split("\n", 1)
    _, tail = rest.split(END, 1)
    expected = f"{head}{BEGIN}{marker}\n{table_markdown()}\n{END}{tail}"
    if os.environ.get("UPDATE_DOCS") == "1":
        DOC.write_text(expected, encoding="utf-8")
    assert text == expected, "docs/DATA_PROTECTION.md differs from base/legal_profiles.toml: UPDATE_DOCS=1"
