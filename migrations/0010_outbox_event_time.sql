-- An event's time is when it was written, not when its transaction began (now()): what
-- commit-to-delivery latency is measured from, and what consumers order by.
alter table outbox alter column occurred_at set default clock_timestamp();
