-- The MQTT consumer leases its batch instead of holding row locks while it waits for the broker,
-- so the webhook fan-out never skips rows (or waits) because of MQTT.
alter table outbox add column mqtt_lease_until timestamptz;
