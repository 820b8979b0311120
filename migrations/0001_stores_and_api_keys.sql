-- Stores (tenants) and their API keys. Key digests only: the plaintext is never stored.

create table stores (
    id uuid primary key,
    name text not null check (char_length(name) between 1 and 200),
    -- Operator-set overrides of the deployment's rate limits (null = deployment default).
    rate_limit_per_minute integer check (rate_limit_per_minute > 0),
    rate_limit_per_hour integer check (rate_limit_per_hour > 0),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table api_keys (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    -- The public part of the key (`pf_<env>_` + 16 chars): the lookup id, safe to show.
    key_id text not null unique,
    name text not null check (char_length(name) between 1 and 100),
    digest bytea not null,
    -- During a roll's grace period the previous secret stays valid until previous_valid_until.
    previous_digest bytea,
    previous_valid_until timestamptz,
    full_access boolean not null default false,
    roles text[] not null default '{}',
    permissions text[] not null default '{}',
    ip_allowlist text[] not null default '{}',
    active boolean not null default true,
    expires_at timestamptz,
    -- Set for keys owned by an outside system; the API cannot change or delete them.
    managed_by text,
    created_by uuid,
    rate_limit_per_minute integer check (rate_limit_per_minute > 0),
    rate_limit_per_hour integer check (rate_limit_per_hour > 0),
    last_used_at timestamptz,
    last_used_ip text,
    request_count bigint not null default 0,
    rolled_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create index api_keys_store_created on api_keys (store_id, created_at, id);

-- Every replica caches keys; these triggers tell them (LISTEN pf_key_changes) to drop a key
-- whenever anything that verification depends on changes, whoever changed it.
create function notify_api_key_change() returns trigger language plpgsql as $$
begin
    perform pg_notify('pf_key_changes', coalesce(old.key_id, new.key_id));
    return null;
end;
$$;

create trigger api_keys_changed
    after update of digest, previous_digest, previous_valid_until, full_access, roles, permissions,
        ip_allowlist, active, expires_at, managed_by, rate_limit_per_minute, rate_limit_per_hour
    on api_keys for each row execute function notify_api_key_change();

create trigger api_keys_deleted
    after delete on api_keys for each row execute function notify_api_key_change();

-- A store's name and limits are cached with its keys: 'store:<id>' drops that store's keys.
create function notify_store_change() returns trigger language plpgsql as $$
begin
    perform pg_notify('pf_key_changes', 'store:' || coalesce(old.id, new.id));
    return null;
end;
$$;

create trigger stores_changed
    after update of name, rate_limit_per_minute, rate_limit_per_hour or delete
    on stores for each row execute function notify_store_change();
