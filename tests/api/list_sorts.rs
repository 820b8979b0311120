//! Every field a list sorts by has an index that serves the page's query, `where store_id = $1
//! [and <parent> = $2] order by <field>, id`: without one, a page of a large store's list sorts
//! the whole store first.

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
