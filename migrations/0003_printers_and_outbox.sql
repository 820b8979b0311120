-- Printers, their last known state, and the transactional outbox every mutation writes to.

create table printers (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    name text not null check (char_length(name) between 1 and 100),
    -- bambu | klipper | octoprint | generic: how telemetry and commands reach it.
    provider text not null,
    -- The vendor's id for the device (Bambu serial, Moonraker instance, ...), unique per provider.
    device_id text not null,
    model text,
    tags text[] not null default '{}',
    nozzle_diameter_mm double precision,
    build_volume_mm jsonb,
    location text,
    notes text,
    enabled boolean not null default true,
    -- Confirmed ready for the next job (the bed is clear).
    ready boolean not null default true,
    continuous_print boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (store_id, provider, device_id)
);

create index printers_store_created on printers (store_id, created_at, id);
create index printers_store_name on printers (store_id, name, id);

-- The last normalised telemetry of each printer (written by the telemetry bridge).
create table printer_states (
    printer_id uuid primary key references printers (id) on delete cascade,
    store_id uuid not null references stores (id) on delete cascade,
    state jsonb not null,
    updated_at timestamptz not null default now()
);

-- One row per entity change and per domain event, in the mutating transaction; a relay
-- publishes them (MQTT, webhooks) and marks them published.
create table outbox (
    id bigserial primary key,
    event_id uuid not null unique,
    store_id uuid not null references stores (id) on delete cascade,
    -- e.g. printer.created, job.started
    type text not null,
    entity_type text not null,
    entity_id uuid not null,
    -- INSERT | UPDATE | DELETE for entity changes; null for domain events.
    action text,
    entity jsonb not null,
    changes jsonb not null default '{}',
    occurred_at timestamptz not null default now(),
    published_at timestamptz
);

create index outbox_unpublished on outbox (id) where published_at is null;
create index outbox_store_id on outbox (store_id, id);
