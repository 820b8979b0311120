-- How far each store's events have been purged (the highest sequence deleted): `GET
-- /v1/events?after=N` with N below it answers `410 events_expired` rather than a page that
-- silently skips what is gone.
create table event_horizons (
    store_id uuid primary key references stores (id) on delete cascade,
    purged_through bigint not null
);
