-- Wake the outbox relay when events are written (once per statement; the relay drains batches).
create function pf_notify_outbox() returns trigger language plpgsql as $$
begin
    perform pg_notify('pf_outbox', '');
    return null;
end;
$$;

create trigger outbox_notify after insert on outbox
    for each statement execute function pf_notify_outbox();

-- Catch-up reads (`GET /v1/events?after=`) and retention purges of published events.
create index outbox_published on outbox (published_at) where published_at is not null;
