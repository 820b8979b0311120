-- Short-lived MQTT credentials for signed-in users' dashboards (`POST /v1/mqtt/credentials`).
-- Tied to the session that asked: signing out ends them.

create table dashboard_mqtt_credentials (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    user_id uuid not null references users (id) on delete cascade,
    session_id uuid not null references sessions (id) on delete cascade,
    digest bytea not null,
    created_at timestamptz not null,
    expires_at timestamptz not null
);

create index dashboard_mqtt_credentials_expires on dashboard_mqtt_credentials (expires_at);
create index dashboard_mqtt_credentials_session on dashboard_mqtt_credentials (session_id);
