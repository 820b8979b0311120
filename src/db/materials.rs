//! The `materials` table; every function is scoped by store.

use crate::ids::StoreId;
use crate::list::{Field, Kind, Spec, CREATED_AT, UPDATED_AT};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MaterialRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub name: String,
    pub brand: Option<String>,
    pub material_type: String,
    pub color: Option<String>,
    pub tags: Vec<String>,
    pub price_per_1000g: Option<f64>,
    pub diameter_mm: Option<f64>,
    pub density_g_cm3: Option<f64>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Writable material fields; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct MaterialFields {
    pub name: Option<String>,
    pub brand: Option<Option<String>>,
    pub material_type: Option<String>,
    pub color: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub price_per_1000g: Option<Option<f64>>,
    pub diameter_mm: Option<Option<f64>>,
    pub density_g_cm3: Option<Option<f64>>,
    pub notes: Option<Option<String>>,
}

impl super::Fields for MaterialFields {
    fn columns(self, columns: &mut super::Columns) {
        columns
            .set("name", self.name)
            .set("brand", self.brand)
            .set("material_type", self.material_type)
            .set("color", self.color)
            .set("tags", self.tags)
            .set("price_per_1000g", self.price_per_1000g)
            .set("diameter_mm", self.diameter_mm)
            .set("density_g_cm3", self.density_g_cm3)
            .set("notes", self.notes);
    }
}

impl super::Table for MaterialRow {
    const NAME: &'static str = "materials";
}

/// What the list endpoint filters and sorts on: API names and their columns.
pub static LIST: Spec = Spec {
    fields: &[
        Field::new("name", "name", Kind::Text).sortable(),
        Field::new("brand", "brand", Kind::Text).nullable(),
        Field::new("type", "material_type", Kind::Text),
        Field::new("color", "color", Kind::Text).nullable(),
        CREATED_AT,
        UPDATED_AT,
    ],
    default_sort: "createdAt",
    default_descending: false,
};
