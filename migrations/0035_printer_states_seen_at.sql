-- When a telemetry bridge last heard each printer (written with its state, and noted in
-- batches while nothing changes): a printer that fell silent while no bridge was following it
-- (switched off during a restart) is found by any bridge and shown offline, instead of online
-- for good. Not indexed: the bridges' sweeps read one row per printer twice a minute, and an
-- index on it (or on `state`) would make every state write a non-HOT update.
alter table printer_states add column seen_at timestamptz not null default now();
