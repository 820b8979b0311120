//! The indexes a large store needs. Every field a list sorts by has one that serves the page's
//! query, `where store_id = $1 [and <parent> = $2] order by <field>, id`: without one, a page of
//! a large store's list sorts the whole store first. Every foreign key has one too.

use crate::helpers::TestApp;
use printfarm::http::filter_params::LISTS;

/// The table each list reads; `None` for a list read through a view, whose rows are few.
fn table_of(path: &str) -> Option<&'static str> {
    Some(match path {
        "/v1/api-keys" => "api_keys",
        "/v1/audit-logs" => "audit_logs",
        "/v1/invitations" => "invitations",
        "/v1/materials" => "materials",
        "/v1/materials/instances" => "material_instances",
        "/v1/orders" => "orders",
        "/v1/parts" => "parts",
        "/v1/print-jobs" => "print_jobs",
        "/v1/printer-commands" => "printer_commands",
        "/v1/printers" => "printers",
        "/v1/skus" => "skus",
        "/v1/webhooks" => "webhook_endpoints",
        "/v1/webhooks/{id}/deliveries" => "webhook_deliveries",
        // A store's members: memberships joined to users (the `store_members` view).
        "/v1/users" => return None,
        other => panic!("{other} is a list this test does not know: name its table here"),
    })
}

#[tokio::test]
async fn every_sortable_field_has_an_index_in_the_order_a_page_reads() {
    let app = TestApp::new().await;
    let mut missing = Vec::new();
    for (path, spec) in LISTS {
        let Some(table) = table_of(path) else {
            continue;
        };
        let definitions: Vec<String> =
            sqlx::query_scalar("select indexdef from pg_indexes where tablename = $1")
                .bind(table)
                .fetch_all(app.pool())
                .await
                .unwrap();
        for field in spec.fields.iter().filter(|f| f.sortable) {
            // The store first; a parent's id (the endpoint of a delivery) may come between.
            let serves = definitions.iter().any(|definition| {
                definition.contains("(store_id, ")
                    && definition.ends_with(&format!("{}, id)", field.column))
            });
            if !serves {
                missing.push(format!("{path} by {} ({table})", field.name));
            }
        }
    }
    assert!(missing.is_empty(), "sorted without an index: {missing:#?}");
}

/// Every foreign key has an index leading with its columns (or with them but the store, for
/// keys on a uuid that is unique across stores): deleting the row it points at, and the cascade
/// a store's deletion makes, find the rows that point at it without reading the whole table.
#[tokio::test]
async fn every_foreign_key_has_an_index() {
    let app = TestApp::new().await;
    let unindexed: Vec<String> = sqlx::query_scalar(
        "with keys as (
             select c.conrelid, c.conname, c.conkey,
                    array(select k from unnest(c.conkey) k
                           where k <> (select attnum from pg_attribute
                                        where attrelid = c.conrelid and attname = 'store_id'))
                        as without_store
               from pg_constraint c
              where c.contype = 'f' and c.connamespace = 'public'::regnamespace),
         indexes as (
             select indrelid, string_to_array(indkey::text, ' ')::int2[] as columns from pg_index)
         select k.conrelid::regclass::text || ' ' || k.conname
           from keys k
          where not exists (
                select 1 from indexes i
                 where i.indrelid = k.conrelid
                   and ((i.columns[1:cardinality(k.conkey)] @> k.conkey
                         and i.columns[1:cardinality(k.conkey)] <@ k.conkey)
                     or (cardinality(k.without_store) > 0
                         and i.columns[1:cardinality(k.without_store)] @> k.without_store
                         and i.columns[1:cardinality(k.without_store)] <@ k.without_store)))
          order by 1",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert!(
        unindexed.is_empty(),
        "foreign keys without an index: {unindexed:#?}"
    );
}

/// The audit log's filters by who acted and by request each have an index leading with the
/// store and that column: a key that acted a few times in a busy store's 90 days is found
/// without reading the store's whole history.
#[tokio::test]
async fn the_audit_log_is_read_by_actor_and_request_through_an_index() {
    let app = TestApp::new().await;
    let definitions: Vec<String> =
        sqlx::query_scalar("select indexdef from pg_indexes where tablename = 'audit_logs'")
            .fetch_all(app.pool())
            .await
            .unwrap();
    for column in ["api_key_id", "user_id", "request_id", "entity_id"] {
        assert!(
            definitions
                .iter()
                .any(|d| d.contains(&format!("(store_id, {column}"))),
            "no index reads the audit log by {column}: {definitions:#?}"
        );
    }
}
