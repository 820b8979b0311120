//! Orders as the API shows and events carry them: their source, status and items.

use super::entity::{entity_view, Stored};
use super::events::EventType;
use crate::db::orders::{self as db, OrderItemRow, OrderRow};
use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

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
    pub fn as_str(self) -> &'static str {
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
    pub fn parse(s: &str) -> OrderStatus {
        match s {
            "cancelled" => OrderStatus::Cancelled,
            "closed" => OrderStatus::Closed,
            _ => OrderStatus::Open,
        }
    }

    pub fn as_str(self) -> &'static str {
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
    pub fn new(r: OrderRow, items: &[OrderItemRow]) -> Self {
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

entity_view!(Order, Order);

impl Stored for Order {
    type Row = OrderRow;

    async fn load(db: &mut PgConnection, store: StoreId, row: OrderRow) -> sqlx::Result<Order> {
        let items = db::items(&mut *db, store, &[row.id]).await?;
        Ok(Order::new(row, &items))
    }
}

impl OrderStatus {
    /// `open → cancelled | closed`, and either back to `open` by reopening.
    pub fn can_become(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Open, Cancelled) | (Open, Closed) | (Cancelled, Open) | (Closed, Open)
        )
    }

    /// The domain event a move into this status emits, if any.
    pub fn event_on_entry(self) -> Option<EventType> {
        match self {
            OrderStatus::Cancelled => Some(EventType::OrderCancelled),
            OrderStatus::Closed => Some(EventType::OrderClosed),
            OrderStatus::Open => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;

    #[test]
    fn open_orders_close_or_cancel_and_finished_ones_reopen() {
        let all = [Open, Cancelled, Closed];
        let legal = [
            (Open, Cancelled),
            (Open, Closed),
            (Cancelled, Open),
            (Closed, Open),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.can_become(to),
                    legal.contains(&(from, to)),
                    "{from:?} → {to:?}"
                );
            }
        }
        assert_eq!(Cancelled.event_on_entry(), Some(EventType::OrderCancelled));
        assert_eq!(Closed.event_on_entry(), Some(EventType::OrderClosed));
        assert_eq!(Open.event_on_entry(), None);
    }
}

/// One `POST /v1/orders/print` run that created jobs: what `orders.auto_printed` carries.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPrintRun {
    /// The run's id (the event's entity id).
    pub id: Uuid,
    /// The orders whose items it printed.
    pub order_ids: Vec<Uuid>,
    /// The jobs it created.
    pub print_job_ids: Vec<Uuid>,
    /// The order items it processed.
    pub processed_item_ids: Vec<Uuid>,
}
