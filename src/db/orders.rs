//! The `orders` and `order_items` tables, and the queries `orders/print` expands items with.
//! Every function is scoped by store.

use crate::ids::StoreId;
use crate::list::{Field, Kind, Spec, CREATED_AT, UPDATED_AT};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub order_number: Option<String>,
    pub source: String,
    pub status: String,
    pub customer_name: Option<String>,
    pub notes: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderItemRow {
    pub id: Uuid,
    pub order_id: Uuid,
    pub sku_id: Option<Uuid>,
    pub external_sku: Option<String>,
    pub quantity: i32,
    pub processed_at: Option<DateTime<Utc>>,
}

/// An item to write: a SKU of the store or the shop's SKU code, and how many.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub sku_id: Option<Uuid>,
    pub external_sku: Option<String>,
    pub quantity: i32,
}

#[derive(Debug, Default)]
pub struct OrderFields {
    pub order_number: Option<Option<String>>,
    pub source: Option<String>,
    pub customer_name: Option<Option<String>>,
    pub notes: Option<Option<String>>,
}

/// An unprocessed item of an open order whose SKU is known and has parts: ready to print.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PrintableItem {
    pub item_id: Uuid,
    pub order_id: Uuid,
    pub sku_id: Uuid,
    pub quantity: i32,
}

/// An unprocessed item of an open order that cannot be printed yet, and why.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BlockedItem {
    pub item_id: Uuid,
    pub order_id: Uuid,
    pub reason: BlockReason,
}

/// Why an order item cannot be printed yet: `unknown_sku`, no SKU of the store has the item's
/// `externalSku`; `sku_has_no_parts`, its SKU has no parts to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, serde::Serialize, utoipa::ToSchema)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    UnknownSku,
    SkuHasNoParts,
}

impl super::Fields for OrderFields {
    fn columns(self, columns: &mut super::Columns) {
        columns
            .set("order_number", self.order_number)
            .set("source", self.source)
            .set("customer_name", self.customer_name)
            .set("notes", self.notes);
    }
}

/// Moves the order to `status`, stamping when it was cancelled or closed (reopening clears both).
pub async fn set_status(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: Uuid,
    status: &str,
) -> sqlx::Result<OrderRow> {
    sqlx::query_as(
        "update orders set status = $3, updated_at = now(),
                cancelled_at = case when $3 = 'cancelled' then now() else null end,
                closed_at = case when $3 = 'closed' then now() else null end
         where store_id = $1 and id = $2 returning *",
    )
    .bind(store)
    .bind(id)
    .bind(status)
    .fetch_one(db)
    .await
}

/// The items of these orders, in each order's item order.
pub async fn items(
    db: impl PgExecutor<'_>,
    store: StoreId,
    orders: &[Uuid],
) -> sqlx::Result<Vec<OrderItemRow>> {
    sqlx::query_as(
        "select id, order_id, sku_id, external_sku, quantity, processed_at from order_items
         where store_id = $1 and order_id = any($2) order by order_id, position",
    )
    .bind(store)
    .bind(orders)
    .fetch_all(db)
    .await
}

pub async fn replace_items(
    tx: &mut PgConnection,
    store: StoreId,
    order: Uuid,
    items: &[NewItem],
) -> sqlx::Result<()> {
    sqlx::query("delete from order_items where store_id = $1 and order_id = $2")
        .bind(store)
        .bind(order)
        .execute(&mut *tx)
        .await?;
    let ids: Vec<Uuid> = items.iter().map(|_| Uuid::now_v7()).collect();
    let skus: Vec<Option<Uuid>> = items.iter().map(|i| i.sku_id).collect();
    let codes: Vec<Option<String>> = items.iter().map(|i| i.external_sku.clone()).collect();
    let quantities: Vec<i32> = items.iter().map(|i| i.quantity).collect();
    sqlx::query(
        "insert into order_items (id, store_id, order_id, position, sku_id, external_sku, quantity)
         select i, $1, $2, (ord - 1)::smallint, s, c, q
         from unnest($3::uuid[], $4::uuid[], $5::text[], $6::int4[]) with ordinality as t(i, s, c, q, ord)",
    )
    .bind(store)
    .bind(order)
    .bind(ids)
    .bind(skus)
    .bind(codes)
    .bind(quantities)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Which of the SKU ids name SKUs of this store, for validating items.
pub async fn existing_skus(
    db: impl PgExecutor<'_>,
    store: StoreId,
    ids: &[Uuid],
) -> sqlx::Result<Vec<Uuid>> {
    super::existing::<super::skus::SkuRow>(db, store, ids).await
}

/// The shared filter of `printable` and `blocked`: unprocessed items of open orders, optionally
/// only of some orders or SKUs, with the SKU resolved by id or by the store's SKU code.
const CANDIDATES: &str = "
    from order_items oi
    join orders o on o.store_id = oi.store_id and o.id = oi.order_id
    left join skus s on s.store_id = oi.store_id
        and (s.id = oi.sku_id or (oi.sku_id is null and s.sku = oi.external_sku))
    where oi.store_id = $1 and oi.processed_at is null and o.status = 'open'
      and ($2::uuid[] is null or oi.order_id = any($2))
      and ($3::uuid[] is null or s.id = any($3))";

/// Of a candidate item: its SKU has parts to print.
const SKU_HAS_PARTS: &str =
    "exists (select 1 from sku_parts sp where sp.store_id = s.store_id and sp.sku_id = s.id)";

/// Locks and returns up to `limit` printable items, oldest order first. The orders are locked
/// first, then their items: the order in which editing and deleting an order lock them, so the
/// two cannot deadlock. The orders' lock is the one stamping them updated takes (a shared one
/// would deadlock two calls each waiting to stamp); a concurrent call waits for it and then
/// sees the items processed, so no item is ever expanded twice.
pub async fn printable(
    tx: &mut PgConnection,
    store: StoreId,
    orders: Option<&[Uuid]>,
    skus: Option<&[Uuid]>,
    limit: i64,
) -> sqlx::Result<Vec<PrintableItem>> {
    // Orders with at least one printable item: `limit` of them hold at least `limit` items.
    let locked: Vec<Uuid> = sqlx::query_scalar(
        "select o.id from orders o
         where o.store_id = $1 and o.status = 'open' and ($2::uuid[] is null or o.id = any($2))
           and exists (
               select 1 from order_items oi
               join skus s on s.store_id = oi.store_id
                   and (s.id = oi.sku_id or (oi.sku_id is null and s.sku = oi.external_sku))
               where oi.store_id = o.store_id and oi.order_id = o.id and oi.processed_at is null
                 and ($3::uuid[] is null or s.id = any($3))
                 and exists (select 1 from sku_parts sp
                             where sp.store_id = s.store_id and sp.sku_id = s.id))
         order by o.created_at, o.id
         limit $4
         for no key update",
    )
    .bind(store)
    .bind(orders)
    .bind(skus)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let sql = format!(
        "select oi.id as item_id, oi.order_id, s.id as sku_id, oi.quantity {CANDIDATES}
           and oi.order_id = any($5)
           and {SKU_HAS_PARTS}
         order by o.created_at, o.id, oi.position
         limit $4
         for update of oi"
    );
    sqlx::query_as(&sql)
        .bind(store)
        .bind(orders)
        .bind(skus)
        .bind(limit)
        .bind(&locked)
        .fetch_all(&mut *tx)
        .await
}

/// Whether the filter still finds a printable item. Asked after a call marked its items
/// processed, for its `hasMore`: a call that waited on another's orders may find few items and
/// still leave many.
pub async fn any_printable(
    db: impl PgExecutor<'_>,
    store: StoreId,
    orders: Option<&[Uuid]>,
    skus: Option<&[Uuid]>,
) -> sqlx::Result<bool> {
    let sql = format!("select exists (select 1 {CANDIDATES} and {SKU_HAS_PARTS})");
    sqlx::query_scalar(&sql)
        .bind(store)
        .bind(orders)
        .bind(skus)
        .fetch_one(db)
        .await
}

/// Up to `limit` items the same filter finds but cannot print, with the reason.
pub async fn blocked(
    db: impl PgExecutor<'_>,
    store: StoreId,
    orders: Option<&[Uuid]>,
    skus: Option<&[Uuid]>,
    limit: i64,
) -> sqlx::Result<Vec<BlockedItem>> {
    let sql = format!(
        "select oi.id as item_id, oi.order_id,
                case when s.id is null then 'unknown_sku' else 'sku_has_no_parts' end as reason
         {CANDIDATES}
           and (s.id is null or not {SKU_HAS_PARTS})
         order by o.created_at, o.id, oi.position
         limit $4"
    );
    sqlx::query_as(&sql)
        .bind(store)
        .bind(orders)
        .bind(skus)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// Marks items expanded into jobs; their orders, changed with them, are stamped updated.
pub async fn mark_processed(
    db: impl PgExecutor<'_>,
    store: StoreId,
    items: &[Uuid],
) -> sqlx::Result<()> {
    sqlx::query(
        "with items as (
             update order_items set processed_at = now()
              where store_id = $1 and id = any($2) returning order_id)
         update orders set updated_at = now()
          where store_id = $1 and id in (select order_id from items)",
    )
    .bind(store)
    .bind(items)
    .execute(db)
    .await?;
    Ok(())
}

/// Whether any item of the order has been expanded into jobs.
pub async fn any_processed(
    db: impl PgExecutor<'_>,
    store: StoreId,
    order: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from order_items
                        where store_id = $1 and order_id = $2 and processed_at is not null)",
    )
    .bind(store)
    .bind(order)
    .fetch_one(db)
    .await
}

impl super::Table for OrderRow {
    const NAME: &'static str = "orders";
}

/// What the list endpoint filters and sorts on: API names and their columns.
pub static LIST: Spec = Spec {
    fields: &[
        Field::new("status", "status", Kind::Name),
        Field::new("source", "source", Kind::Name),
        Field::new("orderNumber", "order_number", Kind::Text).nullable(),
        Field::new("customerName", "customer_name", Kind::Text).nullable(),
        CREATED_AT,
        UPDATED_AT,
    ],
    default_sort: "createdAt",
    default_descending: false,
};
