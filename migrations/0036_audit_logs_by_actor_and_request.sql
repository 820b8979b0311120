-- The audit log is read by who acted and by request as much as by entity: "what did this key
-- do?", "what did this request change?". Without these, a page filtered so (a key that acted
-- a few times in 90 days of a busy store) walked the store's whole history backwards to fill.
create index audit_logs_store_api_key on audit_logs (store_id, api_key_id, created_at, id)
    where api_key_id is not null;
create index audit_logs_store_user on audit_logs (store_id, user_id, created_at, id)
    where user_id is not null;
create index audit_logs_store_request on audit_logs (store_id, request_id)
    where request_id is not null;
