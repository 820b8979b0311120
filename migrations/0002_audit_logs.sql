-- The audit log: who changed what, written in the same transaction as the change itself.

create table audit_logs (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    created_at timestamptz not null default now(),
    -- api_key (a request through the API) or operator (the printfarm CLI).
    actor_type text not null,
    api_key_id uuid,
    key_id text,
    client_ip text,
    request_id text,
    -- create, update, delete, roll, ...
    action text not null,
    entity_type text not null,
    entity_id uuid not null,
    -- {"field": {"from": ..., "to": ...}}, secrets redacted.
    changes jsonb not null default '{}'
);

create index audit_logs_store_created on audit_logs (store_id, created_at, id);
create index audit_logs_store_entity on audit_logs (store_id, entity_id, created_at);
-- The retention purge deletes by age across stores.
create index audit_logs_created on audit_logs (created_at);
