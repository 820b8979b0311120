//! SKUs (sellable products made of parts) as the API shows and events carry them.

use super::entity::{entity_view, Stored};
use crate::db::skus::{self as db, SkuPart, SkuRow};
use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// A part a SKU is made of, and how many.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkedPart {
    /// A part of this store.
    pub part_id: Uuid,
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: i32,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sku {
    pub id: Uuid,
    pub store_id: StoreId,
    /// The store's code for the product, unique in the store.
    #[schema(example = "KEYCHAIN-ORANGE")]
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub parts: Vec<LinkedPart>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Sku {
    pub fn new(r: SkuRow, parts: &[SkuPart]) -> Self {
        Sku {
            parts: parts
                .iter()
                .filter(|p| p.sku_id == r.id)
                .map(|p| LinkedPart {
                    part_id: p.part_id,
                    quantity: p.quantity,
                })
                .collect(),
            id: r.id,
            store_id: r.store_id,
            sku: r.sku,
            name: r.name,
            description: r.description,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

entity_view!(Sku, Sku);

impl Stored for Sku {
    type Row = SkuRow;

    async fn load(db: &mut PgConnection, store: StoreId, row: SkuRow) -> sqlx::Result<Sku> {
        let parts = db::sku_parts(&mut *db, store, &[row.id]).await?;
        Ok(Sku::new(row, &parts))
    }
}
