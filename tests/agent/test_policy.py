"""policy.profile: a state's legal profile sets defaults and refuses a config that breaks one of its rules,
with a sentence naming the rule and its source; ``custom`` accepts the same config.

Driven by the table (base/legal_profiles.toml): every profile x every device rule. A rule added to the
table without a way to break it here fails :func:`test_every_device_rule_can_be_broken_here`.
"""

from __future__ import annotations

import dataclasses

import pytest

from agent import config, policy
from base.errors import ConfigError
from base.legal import CUSTOM, DEVICE_RULES, PRE_EVENT_MODES, profile, profiles

TONE_PIN = 26


def _pre_event_mode(rule, legal):
    """A mode one step more permissive than the rule allows, with a window the maximum allows."""
    if rule.value == PRE_EVENT_MODES[-1]:
        return None
    seconds = float(min(1, legal.rule("pre_event_max_seconds").value) or 1)
    return {"recording": {"pre_event_mode": PRE_EVENT_MODES[PRE_EVENT_MODES.index(rule.value) + 1],
                          "pre_event_seconds": seconds}}


def _pre_event_max_seconds(rule, legal):
    mode = legal.rule("pre_event_mode").value
    if mode == "off" or rule.value >= config.PRE_EVENT_MAX_SECONDS:
        return None
    return {"recording": {"pre_event_mode": mode, "pre_event_seconds": float(rule.value + 1)}}


def _sound(rule, legal):
    return None if rule.value else {"audio": {"enabled": True}}


def _visible_signal(rule, legal):
    return {"controls": {"led_red_pin": 0}} if rule.value else None


def _start_tone(rule, legal):
    return {"signals": {"start_tone": False}, "controls": {"tone_pin": TONE_PIN}} if rule.value else None


#: For each device rule: the smallest config (TOML tables) that breaks it, or None when its value allows all.
BREAKERS = {"pre_event_mode": _pre_event_mode, "pre_event_max_seconds": _pre_event_max_seconds, "sound": _sound,
            "visible_signal": _visible_signal, "start_tone": _start_tone}
#: The most a config can ask of each rule: accepted wherever the rule's value allows everything.
PERMISSIVE = {"pre_event_mode": {"recording": {"pre_event_mode": "standby", "pre_event_seconds": 1.0}},
              "pre_event_max_seconds": {"recording": {"pre_event_seconds": float(config.PRE_EVENT_MAX_SECONDS)}},
              "sound": {"audio": {"enabled": True}},
              "visible_signal": {"controls": {"led_red_pin": 0}},
              "start_tone": {"signals": {"start_tone": False}}}


def with_profile(name: str, tables: dict) -> dict:
    return {"policy": {"profile": name}, **tables}


def test_every_device_rule_can_be_broken_here():
    assert set(BREAKERS) == set(PERMISSIVE) == set(DEVICE_RULES) == set(policy.RULE_CHECKS)


CASES = [(name, rule) for name in profiles() for rule in DEVICE_RULES]


@pytest.mark.parametrize("name, rule", CASES, ids=[f"{n}-{r}" for n, r in CASES])
def test_each_profile_refuses_a_config_that_breaks_each_rule_and_custom_accepts_it(name, rule):
    legal = profile(name)
    breaking = BREAKERS[rule](legal.rule(rule), legal)
    if breaking is None:  # the rule allows everything: its most permissive setting is accepted
        accepted = config.from_dict(with_profile(name, PERMISSIVE[rule]), "agent.toml")
        assert accepted.policy.profile == name
        return
    with pytest.raises(ConfigError) as refused:
        config.from_dict(with_profile(name, breaking), "agent.toml")
    message = str(refused.value)
    assert message.startswith("agent.toml: ")
    assert f"breaks legal profile {name!r}" in message and legal.state in message
    assert legal.rule(rule).says() in message and legal.rule(rule).source in message  # the rule and its law
    assert config.from_dict(with_profile(CUSTOM, breaking)).policy.profile == CUSTOM


@pytest.mark.parametrize("rule", DEVICE_RULES)
def test_a_strict_value_of_each_rule_is_enforced(rule, monkeypatch):
    """Every check works, also for values no state of today's table has (a required tone, no sound …)."""
    strict = {"pre_event_mode": "off", "pre_event_max_seconds": 0, "sound": False, "visible_signal": True,
              "start_tone": True}
    legal = profile("nrw")
    legal = dataclasses.replace(legal, rules={**legal.rules,
                                              rule: dataclasses.replace(legal.rule(rule), value=strict[rule])})
    if rule == "pre_event_max_seconds":  # a maximum of 0 with pre-recording allowed: any window breaks it
        breaking = {"recording": {"pre_event_mode": "announced", "pre_event_seconds": 1.0}}
    else:
        breaking = BREAKERS[rule](legal.rule(rule), legal)
    monkeypatch.setattr(policy, "profile", lambda name: legal)
    tables = {**breaking, "controls": {"tone_pin": TONE_PIN, **breaking.get("controls", {})}}
    with pytest.raises(ConfigError) as refused:
        config.from_dict(with_profile("nrw", tables), "agent.toml")
    assert legal.rule(rule).says() in str(refused.value)
    assert config.from_dict(with_profile(CUSTOM, tables)).policy.profile == CUSTOM


@pytest.mark.parametrize("name", list(profiles()))
def test_a_profile_alone_gives_a_config_within_its_rules(name):
    legal = profile(name)
    cfg = config.from_dict(with_profile(name, {}))
    assert cfg.recording.pre_event_mode == legal.rule("pre_event_mode").value
    assert cfg.recording.pre_event_seconds <= legal.rule("pre_event_max_seconds").value
    assert cfg.signals.start_tone is False  # no sounder fitted: the default tone cannot sound
    with_sounder = config.from_dict(with_profile(name, {"controls": {"tone_pin": TONE_PIN}}))
    assert with_sounder.signals.start_tone is bool(legal.rule("start_tone").default)
    explicit = config.from_dict(with_profile(name, {"recording": {"pre_event_mode": "off", "pre_event_seconds": 5.0}}))
    assert (explicit.recording.pre_event_mode, explicit.recording.pre_event_seconds) == ("off", 5.0)  # the file wins


def test_nrw_defaults_to_announced_pre_recording_of_30_s():
    cfg = config.loads('[policy]\nprofile = "nrw"\n', "agent.toml")
    assert (cfg.recording.pre_event_mode, cfg.recording.pre_event_seconds) == ("announced", 30.0)
    assert config.loads(config.dumps(cfg)) == cfg  # written out, the defaults become explicit keys


def test_a_change_at_run_time_cannot_break_the_profile():
    cfg = config.loads('[policy]\nprofile = "nrw"\n', "agent.toml")
    with pytest.raises(ConfigError, match="recording.pre_event_seconds = 60.0 breaks legal profile 'nrw'"):
        config.replace(cfg, "recording", pre_event_seconds=60.0)  # what a remote 'set' and the demo use


def test_custom_is_the_default_and_an_unknown_profile_is_refused():
    assert config.Config().policy.profile == CUSTOM and config.loads("").recording.pre_event_mode == "standby"
    with pytest.raises(ConfigError, match="policy.profile = 'nw' is not one of: nrw, bw, by, he, custom"):
        config.loads('[policy]\nprofile = "nw"\n')


def test_describe_names_the_profile_and_what_to_confirm():
    assert "custom" in policy.describe(CUSTOM)
    line = policy.describe("nrw")
    assert line.startswith("nrw (Nordrhein-Westfalen") and "announced up to 30 s" in line and "to confirm" in line
