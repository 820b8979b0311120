//! `/v1/orders`: what customers bought, as items of SKUs; `orders/print` turns the open,
//! unprocessed items into print jobs exactly once.

use super::entity::{self, Found};
use super::extract::{nullable, present, ApiJson, ApiPath};
use super::paging::{self, Page, PageParams};
use super::print_jobs::QueueEnd;
use super::respond::Created;
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::orders::{self as db, BlockReason, NewItem, OrderFields, OrderRow, PrintableItem};
use crate::db::print_jobs::{self as jobs_db, End, Link, NewJob};
use crate::db::{parts, skus};
use crate::domain::entity::Stored;
use crate::domain::orders::{Order, OrderSource, OrderStatus};
use crate::domain::print_jobs::{self as jobs, PrintJob};
use crate::domain::queue::JobState;
use crate::domain::validate::{self, Errors};
use crate::domain::{changes, planning, Author, EventType};
use crate::error::{ApiError, ApiResult, Problem};
use crate::ids::{OrderId, StoreId};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashSet};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

mod crud;
mod print;
mod status;

const MAX_ITEMS: usize = 100;
const MAX_FILTER_IDS: usize = 100;
/// Items one `orders/print` call expands; `hasMore` tells the client to call again.
const PRINT_BATCH_ITEMS: i64 = 100;
const MAX_BLOCKED_REPORTED: i64 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(crud::list_orders, crud::create_order))
        .routes(routes!(print::print_orders))
        .routes(routes!(
            crud::get_order,
            crud::update_order,
            crud::delete_order
        ))
        .routes(routes!(status::cancel_order))
        .routes(routes!(status::close_order))
        .routes(routes!(status::reopen_order))
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
    #[schema(schema_with = validate::name_100)]
    pub external_sku: String,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"orderNumber": "#1042", "source": "shopify", "customerName": "Ada Lovelace", "items": [{"skuId": "0190f3a1-7c2e-7d4a-9b1e-3f5c8a2d6e03", "quantity": 2}, {"externalSku": "STAND-ORANGE", "quantity": 1}]}))]
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
#[schema(example = json!({"notes": "gift wrap", "items": [{"externalSku": "STAND-ORANGE", "quantity": 3}]}))]
pub struct UpdateOrder {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub order_number: Option<Option<String>>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "present")]
    pub source: Option<OrderSource>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub customer_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub notes: Option<Option<String>>,
    #[schema(nullable = false, min_items = 1, max_items = 100, value_type = Option<Vec<OrderItemInput>>)]
    #[serde(default, deserialize_with = "present")]
    pub items: Option<Vec<NewOrderItem>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"orderIds": ["0190f3a1-7c2e-7d4a-9b1e-3f5c8a2d6e06"], "position": "back", "priority": 5}))]
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
    pub reason: BlockReason,
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
    /// More printable items remain (or a call made at the same time is still printing some):
    /// call again. `false` only once the filter finds none.
    pub has_more: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrderPath {
    /// The order's id.
    pub id: Uuid,
}
