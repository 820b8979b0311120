-- People: users who sign in to the dashboard, their memberships in stores, and their sessions.

create table users (
    id uuid primary key,
    -- As given; unique ignoring case (users_email_unique).
    email text not null check (char_length(email) between 3 and 254),
    name text not null check (char_length(name) between 1 and 200),
    -- Argon2id in PHC string form (salt and parameters included).
    password_hash text not null,
    password_changed_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create unique index users_email_unique on users (lower(email));

-- A user's place in a store: roles and direct permissions, with the same union rule as keys.
create table memberships (
    store_id uuid not null references stores (id) on delete cascade,
    user_id uuid not null references users (id) on delete cascade,
    owner boolean not null default false,
    roles text[] not null default '{}',
    permissions text[] not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (store_id, user_id)
);

create index memberships_user on memberships (user_id);
-- Exactly one owner per store at most; transferring ownership moves the flag in one transaction.
create unique index memberships_one_owner on memberships (store_id) where owner;

-- Sign-in sessions. Only a keyed digest of the cookie's value is stored.
create table sessions (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    digest bytea not null unique,
    created_at timestamptz not null,
    last_seen_at timestamptz not null,
    -- The absolute end; the idle end is last_seen_at plus the idle lifetime (a setting).
    expires_at timestamptz not null,
    client_ip text,
    user_agent text
);

create index sessions_user on sessions (user_id, created_at);
create index sessions_expires on sessions (expires_at);

-- Failed sign-ins, per account (lower-cased email) and per client address, for throttling
-- across replicas. Rows older than the throttling window are purged.
create table sign_in_failures (
    subject text not null,
    failed_at timestamptz not null
);

create index sign_in_failures_subject on sign_in_failures (subject, failed_at);
create index sign_in_failures_failed on sign_in_failures (failed_at);

-- Who acted: a user, through a session.
alter table audit_logs add column user_id uuid;

-- Jobs, commands and keys a user created (keys: `created_by` stays the creating key).
alter table print_jobs add column created_by_user_id uuid;
alter table printer_commands add column user_id uuid;
alter table api_keys add column created_by_user_id uuid;
