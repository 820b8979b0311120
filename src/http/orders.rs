//! `/v1/orders`: what customers bought, as items of SKUs; `orders/print` turns the open,
//! unprocessed items into print jobs exactly once.

use super::extract::{nullable, ApiJson, ApiPath};
use super::paging::{self, Page, PageParams};
use super::print_jobs::{self, PrintJob, QueueEnd};
use super::validate::Errors;
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::catalog;
use crate::db::orders::{self as db, NewItem, OrderFields, OrderItemRow, OrderRow};
use crate::db::print_jobs::{self as jobs_db, End, Link};
use crate::error::{ApiError, ApiResult, Problem};
use crate::events::outbox::Action;
use crate::ids::StoreId;
use crate::list::{Field, Kind, Spec, CREATED_AT, UPDATED_AT};
use crate::mutation::{self, Author};
use crate::queue::JobState;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

const MAX_ITEMS: usize = 100;
const MAX_FILTER_IDS: usize = 100;
/// Items one `orders/print` call expands; `hasMore` tells the client to call again.
const PRINT_BATCH_ITEMS: i64 = 100;
const MAX_BLOCKED_REPORTED: i64 = 100;
const ENTITY: &str = "order";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orders, create_order))
        .routes(routes!(print_orders))
        .routes(routes!(get_order, update_order, delete_order))
        .routes(routes!(cancel_order))
        .routes(routes!(close_order))
        .routes(routes!(reopen_order))
}

/// Where the order came from: `manual` orders emit `order.created_manual`, the others
/// `order.created_retail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderSource {
    Manual,
    Shopify,
    Etsy,
    Woocommerce,
    Squarespace,
    Ebay,
    Amazon,
    Api,
    Other,
}

impl OrderSource {
    fn as_str(self) -> &'static str {
        match self {
            OrderSource::Manual => "manual",
            OrderSource::Shopify => "shopify",
            OrderSource::Etsy => "etsy",
            OrderSource::Woocommerce => "woocommerce",
            OrderSource::Squarespace => "squarespace",
            OrderSource::Ebay => "ebay",
            OrderSource::Amazon => "amazon",
            OrderSource::Api => "api",
            OrderSource::Other => "other",
        }
    }
}

/// `open` orders are printed; `cancelled` and `closed` (fulfilled) ones are not, until reopened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Open,
    Cancelled,
    Closed,
}

impl OrderStatus {
    fn parse(s: &str) -> OrderStatus {
        match s {
            "cancelled" => OrderStatus::Cancelled,
            "closed" => OrderStatus::Closed,
            _ => OrderStatus::Open,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Open => "open",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Closed => "closed",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub id: Uuid,
    /// A SKU of this store, or null when the item names the shop's `externalSku`.
    pub sku_id: Option<Uuid>,
    /// The shop's SKU code, matched against the store's SKU codes when printed.
    pub external_sku: Option<String>,
    pub quantity: i32,
    /// When `orders/print` turned the item into jobs; null until then.
    pub processed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: Uuid,
    pub store_id: StoreId,
    /// The shop's own reference.
    #[schema(example = "#1001")]
    pub order_number: Option<String>,
    #[schema(value_type = OrderSource)]
    pub source: String,
    pub status: OrderStatus,
    pub customer_name: Option<String>,
    pub notes: Option<String>,
    pub items: Vec<OrderItem>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Order {
    fn new(r: OrderRow, items: &[OrderItemRow]) -> Self {
        Order {
            items: items
                .iter()
                .filter(|i| i.order_id == r.id)
                .map(|i| OrderItem {
                    id: i.id,
                    sku_id: i.sku_id,
                    external_sku: i.external_sku.clone(),
                    quantity: i.quantity,
                    processed_at: i.processed_at,
                })
                .collect(),
            id: r.id,
            store_id: r.store_id,
            order_number: r.order_number,
            source: r.source,
            status: OrderStatus::parse(&r.status),
            customer_name: r.customer_name,
            notes: r.notes,
            cancelled_at: r.cancelled_at,
            closed_at: r.closed_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// One line of an order: exactly one of `skuId` and `externalSku`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewOrderItem {
    pub sku_id: Option<Uuid>,
    pub external_sku: Option<String>,
    pub quantity: i32,
}

/// An order item: exactly one of `skuId` (a SKU of this store) and `externalSku` (the shop's
/// SKU code).
// How `NewOrderItem` is documented, since a single object schema cannot say "exactly one of".
// The handler reads `NewOrderItem` and checks the same rule, with a pointer in its 422.
#[derive(ToSchema, Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum OrderItemInput {
    BySku(SkuOrderItem),
    ByCode(CodeOrderItem),
}

/// An item naming one of this store's SKUs.
#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct SkuOrderItem {
    pub sku_id: Uuid,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i32,
}

/// An item naming the shop's SKU code, matched against the store's SKU codes when printed.
#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct CodeOrderItem {
    /// 1–100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub external_sku: String,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOrder {
    #[schema(max_length = 100)]
    pub order_number: Option<String>,
    /// Default `manual`.
    pub source: Option<OrderSource>,
    #[schema(max_length = 200)]
    pub customer_name: Option<String>,
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
    /// 1–100 items.
    #[schema(min_items = 1, max_items = 100, value_type = Vec<OrderItemInput>)]
    pub items: Vec<NewOrderItem>,
}

/// Fields to change; `null` clears the optional ones. `items` replaces the list, and only
/// while no item has been printed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateOrder {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub order_number: Option<Option<String>>,
    pub source: Option<OrderSource>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub customer_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub notes: Option<Option<String>>,
    #[schema(min_items = 1, max_items = 100, value_type = Option<Vec<OrderItemInput>>)]
    pub items: Option<Vec<NewOrderItem>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrintOrders {
    /// Only these orders (1–100); default every open order.
    #[schema(min_items = 1, max_items = 100)]
    pub order_ids: Option<Vec<Uuid>>,
    /// Only items of these SKUs (1–100).
    #[schema(min_items = 1, max_items = 100)]
    pub sku_ids: Option<Vec<Uuid>>,
    /// Priority of the new jobs, 0–100, default 50.
    #[schema(minimum = 0, maximum = 100)]
    pub priority: Option<i32>,
    /// Where the new jobs join the queue (in order), default `back`.
    #[serde(default)]
    pub position: QueueEnd,
}

/// An item that matched but could not be printed; it stays unprocessed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockedItem {
    pub order_id: Uuid,
    pub item_id: Uuid,
    /// `unknown_sku`: no SKU of the store has the item's `externalSku`; `sku_has_no_parts`.
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrintOrdersResult {
    /// The jobs created: one per item and part, quantity = item quantity × part quantity.
    pub print_jobs: Vec<PrintJob>,
    /// Items now processed (they will never be printed again).
    pub processed_item_ids: Vec<Uuid>,
    /// Up to 100 matching items that could not be printed yet.
    pub blocked_items: Vec<BlockedItem>,
    /// More printable items remain: call again.
    pub has_more: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrderPath {
    /// The order's id.
    pub id: Uuid,
}

static LIST_SPEC: Spec = Spec {
    fields: &[
        Field::new("status", "status", Kind::Text),
        Field::new("source", "source", Kind::Text),
        Field::new("orderNumber", "order_number", Kind::Text).nullable(),
        Field::new("customerName", "customer_name", Kind::Text).nullable(),
        CREATED_AT,
        UPDATED_AT,
    ],
    default_sort: "createdAt",
    default_descending: false,
};

async fn items(
    e: &mut Errors,
    tx: &mut PgConnection,
    store: StoreId,
    values: &[NewOrderItem],
) -> ApiResult<Vec<NewItem>> {
    if values.is_empty() || values.len() > MAX_ITEMS {
        e.add(
            "/items",
            "invalid_length",
            format!("1 to {MAX_ITEMS} items"),
        );
    }
    let mut out = Vec::with_capacity(values.len());
    for (i, item) in values.iter().enumerate() {
        if !(1..=10_000).contains(&item.quantity) {
            e.add(
                format!("/items/{i}/quantity"),
                "out_of_range",
                "must be between 1 and 10000",
            );
        }
        let external_sku = item
            .external_sku
            .as_deref()
            .map(|c| e.name(&format!("/items/{i}/externalSku"), c, 100));
        if item.sku_id.is_some() == external_sku.is_some() {
            e.add(
                format!("/items/{i}"),
                "invalid_value",
                "give exactly one of skuId and externalSku",
            );
        }
        out.push(NewItem {
            sku_id: item.sku_id,
            external_sku,
            quantity: item.quantity,
        });
    }
    let ids: Vec<Uuid> = values.iter().filter_map(|i| i.sku_id).collect();
    let found = db::existing_skus(&mut *tx, store, &ids).await?;
    for (i, item) in values.iter().enumerate() {
        if let Some(id) = item.sku_id {
            if !found.contains(&id) {
                e.add(
                    format!("/items/{i}/skuId"),
                    "not_found",
                    "no such SKU in this store",
                );
            }
        }
    }
    Ok(out)
}

async fn view(tx: &mut PgConnection, store: StoreId, row: OrderRow) -> ApiResult<Order> {
    let items = db::items(&mut *tx, store, &[row.id]).await?;
    Ok(Order::new(row, &items))
}

/// List the store's orders.
///
/// Required permission: `order.view`. Filters (`field.op=value`): `status`, `source`,
/// `orderNumber`, `customerName`, `createdAt`, `updatedAt`; sort by `createdAt` (default) or
/// `updatedAt`.
#[utoipa::path(get, path = "/v1/orders", tag = "Orders",
    params(PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^((createdAt|updatedAt)(:(asc|desc))?)?$")),
    responses((status = 200, description = "The orders", body = Vec<Order>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::OrderView)?;
    let (list, page, total) = paging::fetch::<OrderRow>(
        &state.pool,
        caller.store_id,
        query.as_deref(),
        &LIST_SPEC,
        "orders",
    )
    .await?;
    let ids: Vec<Uuid> = page.rows.iter().map(|r| r.id).collect();
    let items = db::items(&state.pool, caller.store_id, &ids).await?;
    Ok(Page::new(page, |r| Order::new(r, &items), "/v1/orders", &list, total).into_response())
}

/// Add an order.
///
/// Required permission: `order.create`. Emits `order.created_manual` for `manual` orders and
/// `order.created_retail` for the others.
#[utoipa::path(post, path = "/v1/orders", tag = "Orders", request_body = CreateOrder,
    responses((status = 201, description = "Created", body = Order,
        headers(("location" = String, description = "The new order's URL")))))]
pub async fn create_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateOrder>,
) -> ApiResult<Response> {
    caller.require(Permission::OrderCreate)?;
    let mut e = Errors::default();
    let source = body.source.unwrap_or(OrderSource::Manual);
    let fields = OrderFields {
        order_number: Some(e.optional_text("/orderNumber", body.order_number.as_deref(), 100)),
        source: Some(source.as_str().to_owned()),
        customer_name: Some(e.optional_text("/customerName", body.customer_name.as_deref(), 200)),
        notes: Some(e.optional_text("/notes", body.notes.as_deref(), 2000)),
    };
    let mut tx = state.pool.begin().await?;
    let new_items = items(&mut e, &mut tx, caller.store_id, &body.items).await?;
    e.finish()?;
    let row = db::insert(&mut *tx, caller.store_id, fields).await?;
    db::replace_items(&mut tx, caller.store_id, row.id, &new_items).await?;
    let order = view(&mut tx, caller.store_id, row).await?;
    mutation::record(
        &mut tx,
        &caller,
        ENTITY,
        order.id,
        Action::Insert,
        None,
        Some(&order),
    )
    .await?;
    let event = if source == OrderSource::Manual {
        "order.created_manual"
    } else {
        "order.created_retail"
    };
    mutation::event(&mut tx, &caller, event, ENTITY, order.id, &order).await?;
    tx.commit().await?;
    let location = format!("/v1/orders/{}", order.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(order),
    )
        .into_response())
}

/// One order.
///
/// Required permission: `order.view`.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "Orders", params(OrderPath),
    responses((status = 200, description = "The order", body = Order)))]
pub async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OrderPath>,
) -> ApiResult<Json<Order>> {
    caller.require(Permission::OrderView)?;
    let row = db::get(&state.pool, caller.store_id, path.id, false)
        .await?
        .ok_or(ApiError::NotFound)?;
    let items = db::items(&state.pool, caller.store_id, &[row.id]).await?;
    Ok(Json(Order::new(row, &items)))
}

/// Change an order.
///
/// Required permission: `order.edit`. Replacing `items` after any item has been printed answers
/// `409 conflict`.
#[utoipa::path(patch, path = "/v1/orders/{id}", tag = "Orders", params(OrderPath), request_body = UpdateOrder,
    responses((status = 200, description = "The updated order", body = Order),
        (status = 409, description = "Items were already printed", body = Problem, content_type = "application/problem+json")))]
pub async fn update_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OrderPath>,
    ApiJson(body): ApiJson<UpdateOrder>,
) -> ApiResult<Json<Order>> {
    caller.require(Permission::OrderEdit)?;
    let mut e = Errors::default();
    let fields = OrderFields {
        order_number: body
            .order_number
            .map(|v| e.optional_text("/orderNumber", v.as_deref(), 100)),
        source: body.source.map(|s| s.as_str().to_owned()),
        customer_name: body
            .customer_name
            .map(|v| e.optional_text("/customerName", v.as_deref(), 200)),
        notes: body
            .notes
            .map(|v| e.optional_text("/notes", v.as_deref(), 2000)),
    };
    let mut tx = state.pool.begin().await?;
    let new_items = match &body.items {
        Some(values) => Some(items(&mut e, &mut tx, caller.store_id, values).await?),
        None => None,
    };
    e.finish()?;
    let row = db::get(&mut *tx, caller.store_id, path.id, true)
        .await?
        .ok_or(ApiError::NotFound)?;
    let before = view(&mut tx, caller.store_id, row).await?;
    if new_items.is_some() && before.items.iter().any(|i| i.processed_at.is_some()) {
        return Err(ApiError::Conflict(
            "items already printed cannot be replaced".to_owned(),
        ));
    }
    let row = db::update(&mut *tx, caller.store_id, path.id, fields)
        .await?
        .ok_or(ApiError::NotFound)?;
    if let Some(new_items) = new_items {
        db::replace_items(&mut tx, caller.store_id, path.id, &new_items).await?;
    }
    let after = view(&mut tx, caller.store_id, row).await?;
    mutation::record(
        &mut tx,
        &caller,
        ENTITY,
        path.id,
        Action::Update,
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(after))
}

/// Remove an order.
///
/// Required permission: `order.delete`. Its print jobs stay in the queue, no longer linked.
#[utoipa::path(delete, path = "/v1/orders/{id}", tag = "Orders", params(OrderPath),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OrderPath>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::OrderDelete)?;
    let mut tx = state.pool.begin().await?;
    let row = db::get(&mut *tx, caller.store_id, path.id, true)
        .await?
        .ok_or(ApiError::NotFound)?;
    let before = view(&mut tx, caller.store_id, row).await?;
    print_jobs::unlink_jobs(&mut tx, &caller, Link::Order, path.id).await?;
    db::delete(&mut *tx, caller.store_id, path.id).await?;
    mutation::record(
        &mut tx,
        &caller,
        ENTITY,
        path.id,
        Action::Delete,
        Some(&before),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Moves an order from one of `from` to `to`, recording the change and `event` if any.
async fn set_status(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    from: &[OrderStatus],
    to: OrderStatus,
    event: Option<&str>,
) -> ApiResult<(PgTx, Order)> {
    let mut tx = state.pool.begin().await?;
    let row = db::get(&mut *tx, caller.store_id, id, true)
        .await?
        .ok_or(ApiError::NotFound)?;
    let before = view(&mut tx, caller.store_id, row).await?;
    if !from.contains(&before.status) {
        return Err(ApiError::InvalidStateTransition(format!(
            "a {} order cannot become {}",
            before.status.as_str(),
            to.as_str()
        )));
    }
    let row = db::set_status(&mut *tx, caller.store_id, id, to.as_str()).await?;
    let after = view(&mut tx, caller.store_id, row).await?;
    mutation::record(
        &mut tx,
        caller,
        ENTITY,
        id,
        Action::Update,
        Some(&before),
        Some(&after),
    )
    .await?;
    if let Some(event) = event {
        mutation::event(&mut tx, caller, event, ENTITY, id, &after).await?;
    }
    Ok((tx, after))
}

type PgTx = sqlx::Transaction<'static, sqlx::Postgres>;

/// Cancel an open order.
///
/// Required permission: `order.edit`. Emits `order.cancelled`; the order's jobs that have not
/// started printing (`queued`, `assigned`) are cancelled with it, each emitting `job.cancelled`.
/// A cancelled or closed order answers `409 invalid_state_transition`.
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "Orders", params(OrderPath),
    responses((status = 200, description = "The cancelled order", body = Order),
        (status = 409, description = "The order is not open", body = Problem, content_type = "application/problem+json")))]
pub async fn cancel_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OrderPath>,
) -> ApiResult<Json<Order>> {
    caller.require(Permission::OrderEdit)?;
    let (mut tx, order) = set_status(
        &state,
        &caller,
        path.id,
        &[OrderStatus::Open],
        OrderStatus::Cancelled,
        Some("order.cancelled"),
    )
    .await?;
    for job in jobs_db::lock_unstarted_of_order(&mut *tx, caller.store_id, path.id).await? {
        print_jobs::transition(
            &mut tx,
            &Author::from(&caller),
            PrintJob::from(job),
            JobState::Cancelled,
            None,
            None,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(order))
}

/// Close (fulfil) an open order.
///
/// Required permission: `order.edit`. Emits `order.closed`. A cancelled or closed order answers
/// `409 invalid_state_transition`.
#[utoipa::path(post, path = "/v1/orders/{id}/close", tag = "Orders", params(OrderPath),
    responses((status = 200, description = "The closed order", body = Order),
        (status = 409, description = "The order is not open", body = Problem, content_type = "application/problem+json")))]
pub async fn close_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OrderPath>,
) -> ApiResult<Json<Order>> {
    caller.require(Permission::OrderEdit)?;
    let (tx, order) = set_status(
        &state,
        &caller,
        path.id,
        &[OrderStatus::Open],
        OrderStatus::Closed,
        Some("order.closed"),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(order))
}

/// Reopen a cancelled or closed order.
///
/// Required permission: `order.edit`. Its unprocessed items become printable again. An open
/// order answers `409 invalid_state_transition`.
#[utoipa::path(post, path = "/v1/orders/{id}/reopen", tag = "Orders", params(OrderPath),
    responses((status = 200, description = "The reopened order", body = Order),
        (status = 409, description = "The order is already open", body = Problem, content_type = "application/problem+json")))]
pub async fn reopen_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OrderPath>,
) -> ApiResult<Json<Order>> {
    caller.require(Permission::OrderEdit)?;
    let (tx, order) = set_status(
        &state,
        &caller,
        path.id,
        &[OrderStatus::Cancelled, OrderStatus::Closed],
        OrderStatus::Open,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(order))
}

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
    let mut e = Errors::default();
    filter_ids(&mut e, "/orderIds", body.order_ids.as_deref());
    filter_ids(&mut e, "/skuIds", body.sku_ids.as_deref());
    let priority = body.priority.unwrap_or(50);
    if !(0..=100).contains(&priority) {
        e.add("/priority", "out_of_range", "must be between 0 and 100");
    }
    e.finish()?;
    let (orders, skus) = (body.order_ids.as_deref(), body.sku_ids.as_deref());
    let store = caller.store_id;

    let mut tx = state.pool.begin().await?;
    let mut printable = db::printable(&mut tx, store, orders, skus, PRINT_BATCH_ITEMS + 1).await?;
    let has_more = printable.len() as i64 > PRINT_BATCH_ITEMS;
    printable.truncate(PRINT_BATCH_ITEMS as usize);
    let blocked = db::blocked(&mut *tx, store, orders, skus, MAX_BLOCKED_REPORTED).await?;

    // The orders touched, as they were, for their recorded change.
    let mut order_ids: Vec<Uuid> = printable.iter().map(|i| i.order_id).collect();
    order_ids.sort_unstable();
    order_ids.dedup();
    let mut before = BTreeMap::new();
    for id in &order_ids {
        if let Some(row) = db::get(&mut *tx, store, *id, false).await? {
            before.insert(*id, view(&mut tx, store, row).await?);
        }
    }

    // Each SKU's parts, the same part listed twice counted once with the quantities added.
    let sku_ids: Vec<Uuid> = printable.iter().map(|i| i.sku_id).collect();
    let links = catalog::sku_parts(&mut *tx, store, &sku_ids).await?;
    let part_ids: Vec<Uuid> = links.iter().map(|l| l.part_id).collect();
    let parts = catalog::get_parts(&mut *tx, store, &part_ids).await?;
    let materials = catalog::part_materials(&mut *tx, store, &part_ids).await?;

    let mut planned = Vec::new();
    for item in &printable {
        let mut per_part: Vec<(Uuid, i64)> = Vec::new();
        for link in links.iter().filter(|l| l.sku_id == item.sku_id) {
            match per_part.iter_mut().find(|(p, _)| *p == link.part_id) {
                Some((_, q)) => *q += i64::from(link.quantity),
                None => per_part.push((link.part_id, i64::from(link.quantity))),
            }
        }
        for (part_id, per_item) in per_part {
            let Some(part) = parts.iter().find(|p| p.id == part_id) else {
                continue;
            };
            // At most 10,000 (item) × 50 links × 1,000 (link) = 5×10^8, within an i32.
            let copies = i32::try_from(i64::from(item.quantity) * per_item).unwrap_or(i32::MAX);
            let mut job = print_jobs::job_from_part(&caller, part, &materials, copies, priority);
            job.order_id = Some(item.order_id);
            job.order_item_id = Some(item.item_id);
            planned.push(job);
        }
    }

    let first = match body.position {
        QueueEnd::Back => jobs_db::position_at(&mut tx, store, End::Back).await?,
        QueueEnd::Front => {
            jobs_db::position_at(&mut tx, store, End::Front).await? - planned.len() as i64 + 1
        }
    };
    let mut created = Vec::with_capacity(planned.len());
    for (offset, job) in planned.into_iter().enumerate() {
        created.push(print_jobs::enqueue(&mut tx, &caller, job, first + offset as i64).await?);
    }
    let processed: Vec<Uuid> = printable.iter().map(|i| i.item_id).collect();
    db::mark_processed(&mut *tx, store, &processed).await?;
    for (id, before) in before {
        let row = db::get(&mut *tx, store, id, false)
            .await?
            .ok_or(ApiError::NotFound)?;
        let after = view(&mut tx, store, row).await?;
        mutation::record(
            &mut tx,
            &caller,
            ENTITY,
            id,
            Action::Update,
            Some(&before),
            Some(&after),
        )
        .await?;
    }
    if !created.is_empty() {
        let run = Uuid::now_v7();
        let summary = serde_json::json!({
            "id": run,
            "orderIds": order_ids,
            "printJobIds": created.iter().map(|j| j.id).collect::<Vec<_>>(),
            "processedItemIds": processed,
        });
        mutation::event(
            &mut tx,
            &caller,
            "orders.auto_printed",
            "orderPrint",
            run,
            &summary,
        )
        .await?;
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
