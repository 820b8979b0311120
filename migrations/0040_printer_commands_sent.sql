-- Commands a printer was sent but has not answered, oldest first: the delivery worker fails
-- those unanswered for too long, rather than leaving them `sent` for good.
create index printer_commands_sent on printer_commands (updated_at) where status = 'sent';
