-- An endpoint is disabled after failing for five days: failing without a break, not merely
-- without a success since a failure long ago. `last_failed_at` (kept to within the hour) lets a
-- failure two days or more after the last one start a new streak instead of continuing the old.
alter table webhook_endpoints add column last_failed_at timestamptz;
-- Streaks under way: the last attempt of a delivery still pending or given up (its last attempt
-- failed), read from the deliveries rather than every attempt. A streak without one starts anew
-- at its next failure.
update webhook_endpoints e
   set last_failed_at = (select max(d.last_attempt_at)
                           from webhook_deliveries d
                          where d.store_id = e.store_id and d.endpoint_id = e.id
                            and d.status in ('pending', 'failed'))
 where e.failing_since is not null;
