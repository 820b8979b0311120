-- MQTT credentials issued to printers (or the bridge in front of one): one per printer, shown
-- once, kept only as a keyed digest (as API keys are). Rotating replaces the secret and the
-- credential id; deleting revokes it.
create table printer_credentials (
    store_id uuid not null,
    printer_id uuid not null,
    -- Changes at every rotation, so a broker can tell a login made with an older secret.
    credential_id uuid not null,
    digest bytea not null,
    created_at timestamptz not null default now(),
    primary key (store_id, printer_id),
    foreign key (store_id, printer_id) references printers (store_id, id) on delete cascade
);

-- The broker logs a printer in by its printer id alone (the username names it).
create unique index printer_credentials_printer on printer_credentials (printer_id);
