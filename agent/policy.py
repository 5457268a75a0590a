"""The legal profile in force on this device: ``[policy] profile``, the defaults it sets, the configs it refuses.

:mod:`base.legal` holds the table (what each state's law says, with sources); this module knows where
each device rule lands in the device's configuration. A profile fills in the keys the file leaves out
(pre-event mode and window, start tone) and refuses a file that breaks one of its rules, with a sentence
that names the key, the rule and its source. ``custom`` sets no defaults and refuses nothing: a city
whose lawyers decide otherwise says so by choosing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from base.config import option
from base.legal import CUSTOM, LegalProfile, Rule, profile, profile_names, profiles


@dataclass(frozen=True)
class PolicyConfig:
    profile: str = option(CUSTOM, "The legal profile in force: nrw, bw, by, he (defaults and limits from "
                                  "base/legal_profiles.toml) or custom (the city's own settings, nothing refused).",
                          choices=profile_names())


def _pre_event_mode(cfg, rule: Rule, legal: LegalProfile):
    rec = cfg.recording
    applied = rec.pre_event_mode if rec.pre_event_seconds > 0 else "off"
    return None if legal.allows_pre_event_mode(applied) else ("recording.pre_event_mode", rec.pre_event_mode)


def _pre_event_max_seconds(cfg, rule: Rule, legal: LegalProfile):
    rec = cfg.recording
    if rec.pre_event_mode != "off" and rec.pre_event_seconds > rule.value:
        return "recording.pre_event_seconds", rec.pre_event_seconds
    return None


def _sound(cfg, rule: Rule, legal: LegalProfile):
    return ("audio.enabled", True) if cfg.audio.enabled and not rule.value else None


def _visible_signal(cfg, rule: Rule, legal: LegalProfile):
    return ("controls.led_red_pin", 0) if rule.value and not cfg.controls.led_red_pin else None


def _start_tone(cfg, rule: Rule, legal: LegalProfile):
    return ("signals.start_tone", False) if rule.value and not cfg.signals.start_tone else None


#: For each device rule of base.legal: the (key, value) of a config that breaks it, or None.
RULE_CHECKS: dict[str, Callable[[object, Rule, LegalProfile], tuple[str, object] | None]] = {
    "pre_event_mode": _pre_event_mode,
    "pre_event_max_seconds": _pre_event_max_seconds,
    "sound": _sound,
    "visible_signal": _visible_signal,
    "start_tone": _start_tone,
}


def profile_problems(cfg) -> Iterator[tuple[str, str]]:
    """``(section.key, sentence)`` for each rule of ``cfg.policy.profile`` that ``cfg`` breaks."""
    if cfg.policy.profile == CUSTOM:
        return
    legal = profile(cfg.policy.profile)
    for name, check in RULE_CHECKS.items():
        rule = legal.rule(name)
        broken = check(cfg, rule, legal)
        if broken is not None:
            key, value = broken
            yield key, (f"= {value!r} breaks legal profile {legal.name!r} ({legal.state}): {rule.says()}. "
                        f"Source: {rule.citation()}. Change the key, or set policy.profile = \"custom\" if your "
                        "data-protection officer decided otherwise")


def with_profile_defaults(data: dict, builtin) -> dict:
    """``data`` (a parsed config file) with the profile's defaults for the keys it leaves out.

    ``builtin`` is the configuration without a file (its defaults are what a profile's limits cut
    down). A file without a known profile comes back unchanged; what is malformed is left for the
    loader to refuse with its own sentence.
    """
    policy = data.get("policy")
    name = policy.get("profile") if isinstance(policy, dict) else None
    if not isinstance(name, str) or name not in profiles():
        return data
    legal = profile(name)
    controls = data.get("controls") if isinstance(data.get("controls"), dict) else {}
    mode = legal.rule("pre_event_mode").value
    tone = legal.rule("start_tone")
    defaults = {
        "recording": {"pre_event_mode": mode,
                      "pre_event_seconds": 0.0 if mode == "off" else float(min(
                          builtin.recording.pre_event_seconds, legal.rule("pre_event_max_seconds").value))},
        # on where the profile wants it and a sounder is fitted; a required tone without one is refused
        "signals": {"start_tone": bool(tone.value or (tone.default and controls.get("tone_pin")))},
    }
    out = dict(data)
    for section, keys in defaults.items():
        table = out.get(section, {})
        if isinstance(table, dict):
            out[section] = {**keys, **table}
    return out


def describe(name: str) -> str:
    """One line for the doctor and the status: the profile in force and its device rules."""
    if name == CUSTOM:
        return "custom: the city's own settings, checked against no state's law"
    legal = profile(name)
    confirms = len(legal.confirms())
    return legal.summary() + (f"; {confirms} point(s) to confirm (docs/DATA_PROTECTION.md)" if confirms else "")
