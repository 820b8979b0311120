-- no-transaction
-- The audit log by request ("what did this request change?"; see 0036).
create index concurrently if not exists audit_logs_store_request
    on audit_logs (store_id, request_id) where request_id is not null;
