"""The device fleet: per-device MQTT credentials and ACLs, device state, commands and inactivity alarms."""
