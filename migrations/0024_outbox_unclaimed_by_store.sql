-- The relay takes each store's unclaimed events in turn, so that a store's burst no longer
-- holds up another store's events behind it. It finds the stores with unclaimed events by
-- skipping through this index, and takes each store's oldest from it. It replaces the index of
-- unclaimed events by id alone: with both, a planner whose statistics had not yet seen a burst
-- read the whole burst in id order to find another store's few events (measured: 40–80 ms a
-- claim with 50,000 waiting, against 0.2–0.5 ms with this index alone).
drop index outbox_not_fanned_out;
create index outbox_unclaimed_by_store on outbox (store_id, id) where fanned_out_at is null;
-- The store is a value the planner cannot see in advance, so it assumes each holds
-- 1/n_distinct of the unclaimed events; with few stores in the table it would read a big
-- store's backlog to find a small store's events. A server holds many stores: say so.
alter table outbox alter column store_id set (n_distinct = 1000);
analyze outbox;
