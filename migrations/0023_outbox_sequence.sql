-- An event's `sequence` (`GET /v1/events?after=`, every payload) is the order in which the relay
-- took it, not its id. Ids are drawn before commit, so an event whose transaction committed late
-- stood behind a sequence a client had already read past, and `after=` never showed it. The
-- relay takes committed events one claim at a time (the counter row below is locked by each
-- claim until it commits), so a sequence is never handed out behind one already visible.
create table outbox_sequence (
    only_row boolean primary key default true check (only_row),
    last bigint not null
);
alter table outbox add column sequence bigint;
-- Events already taken keep their id as their sequence, so a client's cursor stays valid.
update outbox set sequence = id where fanned_out_at is not null;
insert into outbox_sequence (last) select coalesce(max(sequence), 0) from outbox;
create unique index outbox_sequence_unique on outbox (sequence);
create index outbox_store_sequence on outbox (store_id, sequence) where sequence is not null;
