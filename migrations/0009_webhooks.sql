-- Webhook endpoints, one delivery per (endpoint, event), and every attempt at sending it.

create table webhook_endpoints (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    url text not null check (char_length(url) between 1 and 2000),
    description text,
    -- Event types to send; empty means every event.
    event_types text[] not null default '{}',
    enabled boolean not null default true,
    -- Why it was disabled: gone (the receiver answered 410), failing (5 days of failures), or
    -- null when a user disabled it.
    disabled_reason text,
    secret text not null,
    -- The secret before the last rotation, still signed with until previous_secret_until.
    previous_secret text,
    previous_secret_until timestamptz,
    -- Since when every attempt has failed; null while it succeeds.
    failing_since timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (store_id, id)
);

create index webhook_endpoints_store on webhook_endpoints (store_id, created_at, id);

create table webhook_deliveries (
    id uuid primary key,
    store_id uuid not null,
    endpoint_id uuid not null,
    -- The outbox event id: `webhook-id`, the same on every attempt.
    event_id uuid not null,
    event_type text not null,
    -- The body's `data`.
    payload jsonb not null,
    occurred_at timestamptz not null,
    -- pending | succeeded | failed
    status text not null default 'pending'
        check (status in ('pending', 'succeeded', 'failed')),
    attempts integer not null default 0,
    next_attempt_at timestamptz,
    last_attempt_at timestamptz,
    last_status_code integer,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (endpoint_id, event_id),
    foreign key (store_id, endpoint_id) references webhook_endpoints (store_id, id) on delete cascade
);

-- The dispatcher looks for due pending deliveries.
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_endpoint on webhook_deliveries (store_id, endpoint_id, created_at, id);

create table webhook_attempts (
    id bigserial primary key,
    delivery_id uuid not null references webhook_deliveries (id) on delete cascade,
    attempted_at timestamptz not null,
    status_code integer,
    latency_ms integer not null,
    -- null on success; timeout | connect | ssrf_blocked | redirect | http_status | gone | request
    error_class text,
    -- The first 1 KB of the response.
    response_body text
);

create index webhook_attempts_delivery on webhook_attempts (delivery_id, id);
