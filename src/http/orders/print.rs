//! `POST /v1/orders/print`: open orders' unprocessed items become print jobs, exactly once.

use super::*;
use crate::db::CreatedBy;
use crate::domain::orders::OrderPrintRun;

fn filter_ids(e: &mut Errors, pointer: &str, ids: Option<&[Uuid]>) {
    if let Some(ids) = ids {
        if ids.is_empty() || ids.len() > MAX_FILTER_IDS {
            e.add(
                pointer,
                "invalid_length",
                format!("1 to {MAX_FILTER_IDS} ids"),
            );
        }
    }
}

/// Turn open orders into print jobs.
///
/// Required permission: `order.print`. Every unprocessed item of an open order (optionally only
/// of `orderIds`, only of `skuIds`) becomes one job per part of its SKU, for item quantity ×
/// part quantity copies, and is marked processed in the same transaction: calling again (even
/// concurrently) never duplicates a job. Up to 100 items per call (`hasMore`). Emits
/// `orders.auto_printed` when it created jobs.
#[utoipa::path(post, path = "/v1/orders/print", tag = "Orders", request_body = PrintOrders,
    responses((status = 200, description = "The jobs created", body = PrintOrdersResult)))]
pub async fn print_orders(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PrintOrders>,
) -> ApiResult<Json<PrintOrdersResult>> {
    caller.require(Permission::OrderPrint)?;
    let priority = validate(&body)?;
    let (orders, skus) = (body.order_ids.as_deref(), body.sku_ids.as_deref());
    let (store, author) = (caller.store_id, Author::from(&caller));

    let mut tx = state.pool.begin().await?;
    let mut printable = db::printable(&mut tx, store, orders, skus, PRINT_BATCH_ITEMS).await?;
    let blocked = db::blocked(&mut *tx, store, orders, skus, MAX_BLOCKED_REPORTED).await?;
    let planned = plan(
        &mut tx,
        store,
        &printable,
        priority,
        CreatedBy::from(&caller),
    )
    .await?;
    // An item whose SKU lost its parts after it was found printable (a change that committed
    // in between) makes no job: it is not marked processed, so the next call prints it or
    // reports it blocked.
    let producing: HashSet<Uuid> = planned.iter().filter_map(|j| j.order_item_id).collect();
    printable.retain(|item| producing.contains(&item.item_id));
    let touched = Touched::read(&mut tx, store, &printable).await?;
    let created = enqueue_all(&mut tx, &author, planned, body.position).await?;
    let processed: Vec<Uuid> = printable.iter().map(|i| i.item_id).collect();
    db::mark_processed(&mut *tx, store, &processed).await?;
    let has_more = db::any_printable(&mut *tx, store, orders, skus).await?;
    touched.record(&mut tx, &author).await?;
    if !created.is_empty() {
        let run = OrderPrintRun {
            id: Uuid::now_v7(),
            order_ids: touched.ids(),
            print_job_ids: created.iter().map(|j| j.id).collect(),
            processed_item_ids: processed.clone(),
        };
        changes::event(&mut tx, &author, EventType::OrdersAutoPrinted, run.id, &run).await?;
    }
    tx.commit().await?;
    Ok(Json(PrintOrdersResult {
        print_jobs: created,
        processed_item_ids: processed,
        blocked_items: blocked
            .into_iter()
            .map(|b| BlockedItem {
                order_id: b.order_id,
                item_id: b.item_id,
                reason: b.reason,
            })
            .collect(),
        has_more,
    }))
}

/// The priority of the new jobs, once the filters are checked.
fn validate(body: &PrintOrders) -> ApiResult<i32> {
    let mut e = Errors::default();
    filter_ids(&mut e, "/orderIds", body.order_ids.as_deref());
    filter_ids(&mut e, "/skuIds", body.sku_ids.as_deref());
    let priority = body.priority.unwrap_or(50);
    e.in_range("/priority", Some(priority), 0..=100);
    e.finish()?;
    Ok(priority)
}

/// The jobs for the items, from their SKUs' parts as they are now.
async fn plan(
    tx: &mut PgConnection,
    store: StoreId,
    items: &[PrintableItem],
    priority: i32,
    created_by: CreatedBy,
) -> ApiResult<Vec<NewJob>> {
    let sku_ids: Vec<Uuid> = items.iter().map(|i| i.sku_id).collect();
    let sku_parts = skus::sku_parts(&mut *tx, store, &sku_ids).await?;
    let part_ids: Vec<Uuid> = sku_parts.iter().map(|l| l.part_id).collect();
    let parts = parts::get_parts(&mut *tx, store, &part_ids).await?;
    let materials = parts::part_materials(&mut *tx, store, &part_ids).await?;
    let catalog = planning::Catalog {
        sku_parts: &sku_parts,
        parts: &parts,
        materials: &materials,
    };
    Ok(planning::jobs_for_items(
        items, &catalog, priority, created_by,
    ))
}

/// Queues the jobs together, in order, at `position`.
async fn enqueue_all(
    tx: &mut PgConnection,
    author: &Author,
    planned: Vec<NewJob>,
    position: QueueEnd,
) -> ApiResult<Vec<PrintJob>> {
    let first = match position {
        QueueEnd::Back => jobs_db::position_at(&mut *tx, author.store_id, End::Back).await?,
        QueueEnd::Front => {
            jobs_db::position_at(&mut *tx, author.store_id, End::Front).await?
                - planned.len() as i64
                + 1
        }
    };
    let mut created = Vec::with_capacity(planned.len());
    for (offset, job) in planned.into_iter().enumerate() {
        created.push(jobs::enqueue(&mut *tx, author, job, first + offset as i64).await?);
    }
    Ok(created)
}

/// The orders whose items are printed, as they were, for their recorded change.
struct Touched(BTreeMap<Uuid, Order>);

impl Touched {
    async fn read(
        tx: &mut PgConnection,
        store: StoreId,
        items: &[PrintableItem],
    ) -> ApiResult<Touched> {
        let mut before = BTreeMap::new();
        for item in items {
            if before.contains_key(&item.order_id) {
                continue;
            }
            if let Some(row) = crate::db::get::<OrderRow>(&mut *tx, store, item.order_id).await? {
                before.insert(
                    item.order_id,
                    <Order as Stored>::load(&mut *tx, store, row).await?,
                );
            }
        }
        Ok(Touched(before))
    }

    fn ids(&self) -> Vec<Uuid> {
        self.0.keys().copied().collect()
    }

    async fn record(&self, tx: &mut PgConnection, author: &Author) -> ApiResult<()> {
        for (id, before) in &self.0 {
            let row = crate::db::get::<OrderRow>(&mut *tx, author.store_id, *id)
                .await?
                .ok_or(ApiError::NotFound)?;
            let after = <Order as Stored>::load(&mut *tx, author.store_id, row).await?;
            changes::updated(&mut *tx, author, before, &after).await?;
        }
        Ok(())
    }
}
