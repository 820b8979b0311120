-- A store's own roles: a named permission set, held by keys and members through their
-- `roles` arrays (by id) beside the built-in roles (by name).

create table custom_roles (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    name text not null check (char_length(name) between 1 and 100),
    description text,
    permissions text[] not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create unique index custom_roles_name on custom_roles (store_id, lower(name));
create index custom_roles_store_created on custom_roles (store_id, created_at, id);

-- Keys cache what they may do: a changed or removed role drops its store's keys from every
-- replica's cache (LISTEN pf_key_changes), as a changed key does. Sessions read their
-- membership, roles included, on every request.
create function notify_custom_role_change() returns trigger language plpgsql as $$
begin
    perform pg_notify('pf_key_changes', 'store:' || coalesce(old.store_id, new.store_id));
    return null;
end;
$$;

create trigger custom_roles_changed
    after update or delete on custom_roles
    for each row execute function notify_custom_role_change();
