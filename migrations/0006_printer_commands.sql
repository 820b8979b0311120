-- Commands sent to printers. Delivery (MQTT) moves them on from 'pending'.

create table printer_commands (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    printer_id uuid not null,
    command text not null,
    args jsonb not null default '{}',
    -- pending | sent | acknowledged | failed
    status text not null default 'pending',
    error text,
    api_key_id uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    foreign key (store_id, printer_id) references printers (store_id, id) on delete cascade
);

create index printer_commands_store_created on printer_commands (store_id, created_at, id);
create index printer_commands_printer on printer_commands (store_id, printer_id, created_at);
-- The delivery worker looks for pending commands.
create index printer_commands_pending on printer_commands (created_at) where status = 'pending';
