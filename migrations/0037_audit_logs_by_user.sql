-- no-transaction
-- The audit log by the user who acted (see 0036).
create index concurrently if not exists audit_logs_store_user
    on audit_logs (store_id, user_id, created_at, id) where user_id is not null;
