-- Idempotency-Key (IETF httpapi draft, Stripe's semantics): the first POST with a key does the
-- work and its answer is kept; a repeat within 24 hours gets that answer back. Per store and
-- per principal (the key that sent it), so two clients never see each other's answers.
create table idempotency_keys (
    store_id uuid not null references stores (id) on delete cascade,
    principal_id uuid not null,
    idempotency_key text not null,
    -- What the key was first used for (method, path, query and body), as a SHA-256 digest.
    request_digest bytea not null,
    created_at timestamptz not null default now(),
    -- While the first request runs, repeats are refused (409); should its process die, another
    -- request may take the key over after this.
    locked_until timestamptz,
    -- The answer, once there is one.
    status smallint,
    content_type text,
    location text,
    -- NULL for an answer that carried a secret: that is never kept.
    body bytea,
    primary key (store_id, principal_id, idempotency_key)
);

create index idempotency_keys_created on idempotency_keys (created_at);
