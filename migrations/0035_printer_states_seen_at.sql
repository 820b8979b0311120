-- When a telemetry bridge last heard each printer, touched in batches: a printer that fell
-- silent while no bridge was following it (it was switched off during a restart) is found by
-- any bridge and shown offline, instead of online for good.
alter table printer_states add column seen_at timestamptz not null default now();

-- The sweep reads only the printers shown online, oldest heard first.
create index printer_states_online_seen on printer_states (seen_at)
    where (state ->> 'online') = 'true';
