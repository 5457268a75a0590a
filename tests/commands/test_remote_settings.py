"""A remote 'set' in a running agent: one truthful config_changed audit line per change."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import config
from agent.demo import prepare_workdir
from agent.runtime import Agent
from comms.commands import sign_command


@pytest.fixture
def agent(tmp_path):
    key = Ed25519PrivateKey.generate()
    pub = tmp_path / "command.pub"
    pub.write_text("ed25519:" + base64.b64encode(key.public_key().public_bytes_raw()).decode() + "\n")
    cfg = prepare_workdir(config.Config(), tmp_path)
    cfg = config.replace(cfg, "camera", backend="synthetic", width=320, height=240)
    cfg = config.replace(cfg, "recording", pre_event_seconds=2.0, post_event_seconds=3.0, segment_seconds=2.0)
    cfg = config.replace(cfg, "storage", warn_free_mib=64.0, critical_free_mib=16.0)
    cfg = config.replace(cfg, "runtime", status_file=str(tmp_path / "run" / "status.json"))
    cfg = config.replace(cfg, "telemetry", interval_seconds=30)
    cfg = config.replace(cfg, "commands", public_key=str(pub))
    path = tmp_path / "agent.toml"
    path.write_text(config.dumps(cfg))
    agent = Agent(config.load(path))
    agent.start()
    try:
        yield agent, key
    finally:
        agent.stop()


class ChannelStub:
    """Where the broker channel reads its telemetry interval (the real one needs a broker)."""

    interval_s = 30

    def stop(self):
        pass


def audit_lines(agent, event):
    return [json.loads(line)["fields"] for line in open(agent.cfg.storage.audit_log)
            if json.loads(line)["event"] == event]


@pytest.mark.parametrize("key, old, new", [
    ("recording.pre_event_seconds", 2.0, 1.5),
    ("telemetry.interval_seconds", 30, 60),
    ("display.language", "de", "en"),
])
def test_each_remote_set_writes_one_config_changed_line_naming_what_changed(agent, key, old, new):
    agent, command_key = agent
    agent.channel = ChannelStub()
    handler = agent._command_handler()  # as the broker channel gets it
    ts = handler.verifier.not_before + 1  # signed after the agent started
    before = len(audit_lines(agent, "config_changed"))
    payload = sign_command(command_key, agent.cfg.device.id, "set", {"key": key, "value": new}, command_id="set-1",
                           ts=ts)
    assert handler.handle(payload).ok
    section, name = key.split(".")
    assert getattr(getattr(agent.cfg, section), name) == new
    if key == "telemetry.interval_seconds":
        assert agent.channel.interval_s == new
    changes = audit_lines(agent, "config_changed")[before:]
    assert changes == [{"source": "remote command set-1", "applied": [key],
                        "changes": {key: {"old": old, "new": new}}}]
    again = sign_command(command_key, agent.cfg.device.id, "set", {"key": key, "value": new}, command_id="set-2",
                         ts=ts)
    assert handler.handle(again).ok
    assert len(audit_lines(agent, "config_changed")) == before + 1  # the same value again changes nothing
