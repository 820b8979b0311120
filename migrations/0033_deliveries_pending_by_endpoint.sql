-- The dispatcher's claim finds the endpoints with deliveries waiting by skipping through this
-- index, and each one's oldest due deliveries in it, when more is due than the window of oldest
-- due deliveries it reads: another store's due deliveries are then claimed beside a backlog
-- rather than after it (src/db/deliveries.rs, `CLAIM`).
create index webhook_deliveries_pending_by_endpoint
    on webhook_deliveries (endpoint_id, next_attempt_at, id) where status = 'pending';
