-- Every field a list can be sorted by has an index that serves `where store_id = $1 order by
-- <field>, id` (keyset paging adds `(<field>, id) > ($2, $3)`), so sorting a large store's list
-- reads one page of an index instead of sorting the whole store. Fields that already had one:
-- createdAt everywhere, name of parts, materials and printers, updatedAt of orders and jobs, a
-- job's queuePosition and priority. A store's members are read through a view over two tables
-- and are few; they are sorted in memory.
create index api_keys_store_name on api_keys (store_id, name, id);
create index api_keys_store_updated on api_keys (store_id, updated_at, id);
create index materials_store_updated on materials (store_id, updated_at, id);
create index parts_store_updated on parts (store_id, updated_at, id);
create index skus_store_sku on skus (store_id, sku, id);
create index skus_store_name on skus (store_id, name, id);
create index skus_store_updated on skus (store_id, updated_at, id);
create index material_instances_store_updated on material_instances (store_id, updated_at, id);
create index printers_store_updated on printers (store_id, updated_at, id);
create index webhook_endpoints_store_updated on webhook_endpoints (store_id, updated_at, id);
create index invitations_store_email on invitations (store_id, email, id);
create index invitations_store_expires on invitations (store_id, expires_at, id);
