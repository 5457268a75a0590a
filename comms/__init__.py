"""Everything that crosses the wire: MQTT protocol, uplink, telemetry and the receiver."""
