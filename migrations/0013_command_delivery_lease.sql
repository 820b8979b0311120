-- Command delivery leases its batch instead of holding row locks while the broker acknowledges,
-- so a printer's (fast) answer is never held up behind the delivery.
alter table printer_commands add column delivery_lease_until timestamptz;
