-- Lookups a large store makes often, which read the whole store's rows without an index:
-- deleting a part checks that no job prints it (the (store_id, part_id) foreign key) and a list
-- filters jobs by `partId.eq`; an integration finds its order by `orderNumber.eq` (its own
-- number, to avoid creating it twice); a dashboard lists the open orders newest first.
create index print_jobs_store_part on print_jobs (store_id, part_id);
create index orders_store_number on orders (store_id, order_number) where order_number is not null;
create index orders_store_status_created on orders (store_id, status, created_at, id);
-- Deleting a user or a store finds the rows that go with it through these.
create index dashboard_mqtt_credentials_user on dashboard_mqtt_credentials (user_id);
create index dashboard_mqtt_credentials_store on dashboard_mqtt_credentials (store_id);
create index printer_states_store on printer_states (store_id);
