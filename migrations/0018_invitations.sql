-- Invitations to join a store, and password resets. Only keyed digests of their tokens.

create table invitations (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    email text not null check (char_length(email) between 3 and 254),
    roles text[] not null default '{}',
    permissions text[] not null default '{}',
    digest bytea not null unique,
    invited_by_key_id uuid,
    invited_by_user_id uuid,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    accepted_at timestamptz,
    accepted_by_user_id uuid,
    revoked_at timestamptz
);

create index invitations_store on invitations (store_id, created_at, id);

create table password_resets (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    digest bytea not null unique,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    used_at timestamptz
);

create index password_resets_user on password_resets (user_id);
