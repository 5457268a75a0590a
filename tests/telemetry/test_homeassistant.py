import json

from comms.homeassistant import discovery_messages, is_birth


def test_discovery_points_home_assistant_at_the_devices_own_topics():
    messages = dict(discovery_messages("moers", "kod-07", "0.1.0"))
    assert "homeassistant/binary_sensor/bodycam_moers_kod_07/recording/config" in messages
    battery = json.loads(messages["homeassistant/sensor/bodycam_moers_kod_07/battery/config"])
    assert battery["state_topic"] == "bodycam/moers/kod-07/telemetry"
    assert battery["availability_topic"] == "bodycam/moers/kod-07/status"
    assert battery["device_class"] == "battery" and battery["unit_of_measurement"] == "%"
    assert battery["device"]["identifiers"] == ["bodycam_moers_kod_07"]
    assert len({json.loads(p)["unique_id"] for p in messages.values()}) == len(messages)


def test_birth_message_detection():
    assert is_birth("homeassistant/status", b"online")
    assert not is_birth("homeassistant/status", b"offline") and not is_birth("other/status", b"online")
