-- A member who joins again (removed, then invited back) gets back the keys they made: cached
-- keys of the store are dropped when a membership is added too, not only when one changes or
-- goes (0021), or their keys would stay refused on other replicas until the cache's TTL.
drop trigger memberships_changed on memberships;

create trigger memberships_changed
    after insert or update of owner, roles, permissions or delete on memberships
    for each row execute function notify_membership_change();
