-- A key, a membership or an invitation names custom roles by id in `roles`. Deleting a role
-- locks its row and then counts who holds it; a write that adds roles takes a share lock on each
-- one it adds and fails (foreign_key_violation) when one is gone. So an assignment and a
-- deletion that run at the same time cannot pass each other: one waits for the other, and
-- either the deletion sees the new holder (409) or the assignment sees the role gone.
create function lock_custom_roles_named() returns trigger language plpgsql as $$
declare
    named uuid[];
    held int;
    previous text[] := '{}';
begin
    if tg_op = 'UPDATE' then
        previous := old.roles;
    end if;
    -- Built-in roles are named by their name, the store's own by a uuid. Only the roles a write
    -- adds: one the row already held could not have been deleted while it did.
    select coalesce(array_agg(distinct r::uuid), '{}') into named
      from unnest(new.roles) r
     where r ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
       and not r = any(previous);
    if cardinality(named) = 0 then
        return new;
    end if;
    select count(*) into held from (
        select 1 from custom_roles where store_id = new.store_id and id = any(named) for share
    ) locked;
    if held < cardinality(named) then
        raise foreign_key_violation using
            message = 'a custom role named in roles does not exist',
            constraint = 'roles_named_exist';
    end if;
    return new;
end;
$$;

-- Before, deleting a role did not count open invitations, so one may name a role that is gone:
-- accepting it would now fail every time. What a deleted role granted was nothing; drop its id.
update invitations i set roles = array(
        select r from unnest(i.roles) r
         where r !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
            or exists (select 1 from custom_roles c where c.store_id = i.store_id and c.id::text = r))
 where accepted_at is null and revoked_at is null;

create trigger api_keys_roles_exist before insert or update of roles on api_keys
    for each row execute function lock_custom_roles_named();
create trigger memberships_roles_exist before insert or update of roles on memberships
    for each row execute function lock_custom_roles_named();
create trigger invitations_roles_exist before insert or update of roles on invitations
    for each row execute function lock_custom_roles_named();
