"""Home Assistant MQTT discovery: a fleet shows up in Home Assistant with no manual setup.

Each device announces retained configs under ``<prefix>/<component>/<node id>/<object>/config``
that point Home Assistant at the device's own telemetry and status topics. The runtime publishes them
on connect and again whenever Home Assistant's birth message (``<prefix>/status`` = ``online``) says
it restarted.

The node id is the device id, which is the device certificate's CN: the broker's ACL line
``pattern write homeassistant/+/%u/+/config`` (docs/BROKER.md) then lets a device write its own
configs and nobody else's (mosquitto substitutes ``%u`` only for a whole topic level, so the node id
cannot carry a prefix). Device ids are unique across the broker and one Home Assistant talks to one
broker, so the node id needs no site, and unique ids built from it with a separator that device ids
cannot contain never collide (``kod-07`` and ``kod_07`` stay two devices).
"""

from __future__ import annotations

import json

from base.ids import is_id

#: (component, object id, name, value template, extra fields)
ENTITIES = [
    ("sensor", "state", "Zustand / state", "{{ value_json.recorder.state }}", {"icon": "mdi:cctv"}),
    ("binary_sensor", "recording", "Aufnahme / recording",
     "{{ 'ON' if value_json.recorder.state in ['recording', 'finishing'] else 'OFF' }}", {"icon": "mdi:record-rec"}),
    ("sensor", "battery", "Akku / battery",
     "{{ value_json.battery.percent if value_json.battery else None }}",
     {"device_class": "battery", "unit_of_measurement": "%", "state_class": "measurement"}),
    ("sensor", "storage_free", "Speicher frei / storage free",
     "{{ (value_json.storage.free_bytes / 1073741824) | round(2) if value_json.storage else None }}",
     {"unit_of_measurement": "GiB", "icon": "mdi:sd", "state_class": "measurement"}),
    ("sensor", "backlog", "Upload-Rückstand / upload backlog", "{{ value_json.backlog.segments }}",
     {"unit_of_measurement": "segments", "icon": "mdi:upload", "state_class": "measurement"}),
    ("sensor", "temperature", "CPU-Temperatur / CPU temperature", "{{ value_json.system.cpu_temperature_c }}",
     {"device_class": "temperature", "unit_of_measurement": "°C", "state_class": "measurement"}),
    ("sensor", "alerts", "Warnungen / alerts", "{{ value_json.alerts | length }}", {"icon": "mdi:alert"}),
    # officer check-out: the pseudonymous id, "unassigned", or unknown where check-out is not enabled
    ("sensor", "officer", "Beamter / officer",
     "{{ (value_json.assignment.officer or 'unassigned') if value_json.assignment else None }}",
     {"icon": "mdi:badge-account"}),
    ("sensor", "pre_event_mode", "Voraufnahme-Modus / pre-event mode",
     "{{ value_json.recorder.pre_event_mode | default('unknown') }}", {"icon": "mdi:history"}),
    ("binary_sensor", "pre_recording", "Voraufnahme / pre-recording",
     "{{ 'ON' if value_json.recorder.pre_recording | default(false) else 'OFF' }}", {"icon": "mdi:record-circle-outline"}),
    ("sensor", "legal_profile", "Rechtsprofil / legal profile",
     "{{ value_json.policy.profile if value_json.policy is defined else 'unknown' }}", {"icon": "mdi:scale-balance"}),
]


def node_id(device: str) -> str:
    """The discovery node id of ``device``: the device id itself (= the certificate CN the ACL's %u stands for)."""
    if not is_id(device):  # base.ids' rule: a subset of what Home Assistant allows in a node id
        raise ValueError(f"device id {device!r} cannot be a Home Assistant node id (1-64 of a-z 0-9 - _)")
    return device


def discovery_messages(site: str, device: str, version: str, prefix: str = "homeassistant") -> list[tuple[str, bytes]]:
    """(topic, retained payload) for every entity of one device."""
    base = f"bodycam/{site}/{device}"
    node = node_id(device)
    device_block = {"identifiers": [f"bodycam:{node}"], "name": f"Bodycam {device} ({site})",
                    "manufacturer": "bodycam project", "model": "KOD body camera", "sw_version": version}
    messages = []
    for component, obj, name, template, extra in ENTITIES:
        config = {
            "name": name,
            # ':' is no device id character, so (node, object) -> unique id is one-to-one.
            "unique_id": f"bodycam:{node}:{obj}",
            # Only suggests the entity id (Home Assistant slugifies it and adds a suffix on a clash).
            "object_id": f"bodycam_{node}_{obj}",
            "state_topic": f"{base}/telemetry",
            "value_template": template,
            "availability_topic": f"{base}/status",
            "availability_template": "{{ 'online' if value == 'online' else 'offline' }}",
            "device": device_block,
            **extra,
        }
        messages.append((f"{prefix}/{component}/{node}/{obj}/config",
                         json.dumps(config, sort_keys=True, ensure_ascii=False).encode("utf-8")))
    return messages


def is_birth(topic: str, payload: bytes, prefix: str = "homeassistant") -> bool:
    """True for Home Assistant's 'online' birth message: time to announce again."""
    return topic == f"{prefix}/status" and payload.strip() == b"online"
