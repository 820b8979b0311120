-- When a delivery handed the command to the broker connection. A command whose delivery stopped
-- after that (a crash before it was marked `sent`) may have reached the printer: it is marked
-- `sent`, never published again (a relative move must not run twice).
alter table printer_commands add column handed_at timestamptz;
