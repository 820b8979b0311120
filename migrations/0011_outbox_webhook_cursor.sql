-- Webhook fan-out reads the outbox on its own, so deliveries never wait for the MQTT broker's
-- acknowledgements (and MQTT never waits for webhooks).
alter table outbox add column fanned_out_at timestamptz;
update outbox set fanned_out_at = published_at where published_at is not null;
create index outbox_not_fanned_out on outbox (id) where fanned_out_at is null;
