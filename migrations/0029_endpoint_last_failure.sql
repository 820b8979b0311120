-- An endpoint is disabled after failing for five days: failing continuously, not merely without
-- a success since a failure long ago. `last_failed_at` (kept to within the hour) lets a failure
-- after a day without one start a new streak instead of continuing the old one.
alter table webhook_endpoints add column last_failed_at timestamptz;
-- Streaks under way are taken to be continuous.
update webhook_endpoints set last_failed_at = now() where failing_since is not null;
