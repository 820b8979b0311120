-- Deliveries are inserted by the relay's claim, one per subscribed endpoint of every event, on
-- the commit-to-delivery path; the foreign-key check on each inserted row was about a quarter
-- of that statement. Deliveries are only ever created from their endpoint, within its store
-- (the claim joins on it; resend and recover look it up), so the key adds no integrity there.
-- Deleting an endpoint deletes its deliveries in the same statement, and the hourly purge
-- removes any delivery a concurrent claim created for an endpoint (or store) just deleted.
alter table webhook_deliveries drop constraint if exists webhook_deliveries_store_id_endpoint_id_fkey;
