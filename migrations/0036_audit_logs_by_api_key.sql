-- no-transaction
-- The audit log is read by who acted and by request as much as by entity ("what did this key
-- do?"): without an index, a page so filtered walked the store's whole history backwards. Built
-- concurrently (one index per migration, outside a transaction), so that the table every
-- mutation writes to is not blocked while a large one builds.
create index concurrently if not exists audit_logs_store_api_key
    on audit_logs (store_id, api_key_id, created_at, id) where api_key_id is not null;
