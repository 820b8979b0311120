-- A key a member made can do at most what that member may do now (and nothing once they are
-- no longer a member): cached keys are dropped when a membership changes, as when a key does.
create function notify_membership_change() returns trigger language plpgsql as $$
begin
    perform pg_notify('pf_key_changes', 'store:' || coalesce(old.store_id, new.store_id));
    return null;
end;
$$;

create trigger memberships_changed
    after update of owner, roles, permissions or delete on memberships
    for each row execute function notify_membership_change();
