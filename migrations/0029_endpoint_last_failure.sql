-- An endpoint is disabled after failing for five days: failing without a break, not merely
-- without a success since a failure long ago. `last_failed_at` (kept to within the hour) lets a
-- failure two days or more after the last one start a new streak instead of continuing the old.
alter table webhook_endpoints add column last_failed_at timestamptz;
-- Streaks under way: their last failed attempt, where the log still has one (a streak without
-- one starts anew at its next failure).
update webhook_endpoints e
   set last_failed_at = (select max(a.attempted_at)
                           from webhook_deliveries d
                           join webhook_attempts a on a.delivery_id = d.id
                          where d.endpoint_id = e.id and a.error_class is not null)
 where e.failing_since is not null;
