import json
from itertools import combinations

import paho.mqtt.client as paho
import pytest

from comms.homeassistant import discovery_messages, is_birth, node_id


def test_discovery_points_home_assistant_at_the_devices_own_topics():
    messages = dict(discovery_messages("moers", "kod-07", "0.1.0"))
    assert "homeassistant/binary_sensor/kod-07/recording/config" in messages
    battery = json.loads(messages["homeassistant/sensor/kod-07/battery/config"])
    assert battery["state_topic"] == "bodycam/moers/kod-07/telemetry"
    assert battery["availability_topic"] == "bodycam/moers/kod-07/status"
    assert battery["device_class"] == "battery" and battery["unit_of_measurement"] == "%"
    assert battery["device"]["identifiers"] == ["bodycam:kod-07"]
    assert len({json.loads(p)["unique_id"] for p in messages.values()}) == len(messages)


@pytest.mark.parametrize("device", ["kod-07", "a", "x_y-z", "0" * 64])
def test_every_discovery_topic_passes_the_acl_pattern_for_the_devices_certificate(device):
    """docs/BROKER.md: ``pattern write homeassistant/+/%u/+/config`` with %u = the certificate CN = device id."""
    pattern = "homeassistant/+/%u/+/config".replace("%u", device)
    for topic, _ in discovery_messages("duisburg", device, "0.1.0"):
        assert paho.topic_matches_sub(pattern, topic), topic
        assert topic.split("/")[2] == node_id(device)


def _identity(site: str, device: str) -> tuple[set, set, set]:
    """What Home Assistant keys a device's entities by: topics, unique ids, device identifiers."""
    messages = discovery_messages(site, device, "0.1.0")
    configs = [json.loads(p) for _, p in messages]
    return ({t for t, _ in messages}, {c["unique_id"] for c in configs},
            {i for c in configs for i in c["device"]["identifiers"]})


@pytest.mark.parametrize("one, other", [(("moers", "kod-07"), ("moers", "kod_07")),
                                        (("a-b", "c"), ("a", "b-c")),
                                        (("a_b", "c"), ("a", "b_c")),
                                        (("x", "kod"), ("x", "kod_battery"))])
def test_different_devices_never_share_a_home_assistant_entity(one, other):
    for mine, theirs in zip(_identity(*one), _identity(*other)):
        assert not mine & theirs


def test_node_ids_are_one_to_one_over_tricky_device_ids():
    devices = ["a", "a-b", "a_b", "a-b-c", "a_b-c", "a-b_c", "kod", "kod_state", "kod-state", "storage", "k_"]
    unique_ids = {d: _identity("site", d)[1] for d in devices}
    for a, b in combinations(devices, 2):
        assert node_id(a) != node_id(b) and not unique_ids[a] & unique_ids[b], (a, b)


def test_a_device_id_that_cannot_be_a_node_id_is_refused():
    for bad in ("", "kod/07", "kod+", "#", "Kod 07", "x" * 65):
        with pytest.raises(ValueError):
            node_id(bad)


def test_birth_message_detection():
    assert is_birth("homeassistant/status", b"online")
    assert not is_birth("homeassistant/status", b"offline") and not is_birth("other/status", b"online")


def test_home_assistant_shows_the_assigned_officer():
    officer = json.loads(dict(discovery_messages("moers", "kod-07", "0.1.0"))[
        "homeassistant/sensor/kod-07/officer/config"])
    assert officer["state_topic"] == "bodycam/moers/kod-07/telemetry"
    assert "value_json.assignment.officer" in officer["value_template"]
    assert "'unassigned'" in officer["value_template"] and officer["unique_id"] == "bodycam:kod-07:officer"
