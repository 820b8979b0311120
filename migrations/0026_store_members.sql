-- A store's members as `GET /v1/users` lists them, so that list is paged, filtered and sorted
-- like every other (by `db::list`, which reads one relation by `store_id` and `id`): the
-- membership with its user's email and name, `id` being the user's. `role_permissions` is
-- `db::custom_roles::role_permissions_expr`: the permissions of the custom roles among `roles`.
create view store_members as
select m.store_id, m.user_id as id, m.user_id, u.email, u.name, m.owner, m.roles,
       m.permissions,
       coalesce((select array_agg(distinct p) from custom_roles r
                 cross join lateral unnest(r.permissions) p
                 where r.store_id = m.store_id and r.id::text = any(m.roles)),
                '{}') as role_permissions,
       m.created_at, m.updated_at
  from memberships m join users u on u.id = m.user_id;

-- The default order of that list (the order members joined), read by store.
create index memberships_store_joined on memberships (store_id, created_at, user_id);
