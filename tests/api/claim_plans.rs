//! The dispatcher's claim keeps a sound plan when the statistics are from before a burst: the
//! planner then believes almost nothing is due, and once joined every due delivery to the
//! candidates by nested loop, working them out again for each (seconds a claim). Checked on
//! the plan's row counts, not on time.

use crate::helpers::TestApp;
use printfarm::db::deliveries::CLAIM;
use serde_json::Value;

/// Every node of `plan`, with its children.
fn nodes(plan: &Value) -> Vec<&Value> {
    let mut all = vec![plan];
    for child in plan["Plans"].as_array().into_iter().flatten() {
        all.extend(nodes(child));
    }
    all
}

#[tokio::test]
async fn a_claim_reads_each_due_delivery_at_most_once_with_statistics_from_before_a_burst() {
    let app = TestApp::new().await;
    let pool = app.pool();
    const DUE: i64 = 5_000;
    const LIMIT: i64 = 192;
    for sql in [
        "alter table webhook_deliveries set (autovacuum_enabled = off)",
        "insert into webhook_endpoints (id, store_id, url, secret)
         select gen_random_uuid(), store_id, 'https://example.com/' || g, 'whsec_x'
           from (select id as store_id from stores limit 1) s, generate_series(1, 10) g",
        // What the statistics see: a quiet table, everything delivered.
        "insert into webhook_deliveries (id, store_id, endpoint_id, event_id, event_type,
                                         payload, occurred_at, status, attempts)
         select gen_random_uuid(), e.store_id, e.id, gen_random_uuid(), 'printer.updated',
                '{}', now(), 'succeeded', 1
           from webhook_endpoints e, generate_series(1, 100)",
        "analyze webhook_deliveries",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
    // Then a burst comes due.
    sqlx::query(
        "insert into webhook_deliveries (id, store_id, endpoint_id, event_id, event_type,
                                         payload, occurred_at, status, attempts, next_attempt_at)
         select gen_random_uuid(), e.store_id, e.id, gen_random_uuid(), 'printer.updated',
                '{}', $2, 'pending', 0, $2 - interval '1 minute' + g * interval '1 ms'
           from webhook_endpoints e, generate_series(1, $1 / 10) g",
    )
    .bind(DUE)
    .bind(app.now())
    .execute(pool)
    .await
    .unwrap();
    let explained: (Value,) = sqlx::query_as(&format!(
        "explain (analyze, timing off, format json) {CLAIM}"
    ))
    .bind(app.now())
    .bind(LIMIT)
    .bind(60.0_f64)
    .bind(Vec::<uuid::Uuid>::new())
    .bind(Vec::<uuid::Uuid>::new())
    .bind(64_i64)
    .fetch_one(pool)
    .await
    .unwrap();
    let plan = &explained.0[0]["Plan"];
    let all = nodes(plan);
    // It claimed a full batch...
    assert_eq!(plan["Actual Rows"].as_i64(), Some(LIMIT), "{plan:#}");
    // ...looking at no more than the candidates it reads (8 per delivery claimed), each once.
    for node in &all {
        let loops = node["Actual Loops"].as_i64().unwrap_or(0);
        assert!(loops <= LIMIT * 8, "a node ran {loops} times: {node:#}");
    }
    let discarded: i64 = all
        .iter()
        .map(|n| {
            n["Rows Removed by Join Filter"].as_i64().unwrap_or(0)
                + n["Rows Removed by Filter"].as_i64().unwrap_or(0)
        })
        .sum();
    assert!(
        discarded < DUE,
        "{discarded} rows read and dropped: {plan:#}"
    );
}
