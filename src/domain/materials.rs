//! Materials (filament types) as the API shows and events carry them.

use super::entity::{entity_view, stored_from_row};
use crate::db::materials::MaterialRow;
use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Material {
    pub id: Uuid,
    pub store_id: StoreId,
    pub name: String,
    pub brand: Option<String>,
    /// PLA, PETG, ABS, ASA, TPU, PA, PC, …
    #[schema(example = "PLA")]
    pub r#type: String,
    /// `#RRGGBBAA`, upper case.
    #[schema(example = "#FF8800FF")]
    pub color: Option<String>,
    pub tags: Vec<String>,
    pub price_per_1000g: Option<f64>,
    pub diameter_mm: Option<f64>,
    pub density_g_cm3: Option<f64>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<MaterialRow> for Material {
    fn from(r: MaterialRow) -> Self {
        Material {
            id: r.id,
            store_id: r.store_id,
            name: r.name,
            brand: r.brand,
            r#type: r.material_type,
            color: r.color,
            tags: r.tags,
            price_per_1000g: r.price_per_1000g,
            diameter_mm: r.diameter_mm,
            density_g_cm3: r.density_g_cm3,
            notes: r.notes,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

entity_view!(Material, Material);

stored_from_row!(Material, MaterialRow);
