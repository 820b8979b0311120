//! The `materials` table; every function is scoped by store.

use super::Update;
use crate::ids::StoreId;
use crate::list::{Field, Kind, Spec, CREATED_AT, UPDATED_AT};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
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

pub async fn insert_material(
    db: impl PgExecutor<'_>,
    store: StoreId,
    f: MaterialFields,
) -> sqlx::Result<MaterialRow> {
    sqlx::query_as(
        "insert into materials (id, store_id, name, brand, material_type, color, tags, price_per_1000g,
                                diameter_mm, density_g_cm3, notes)
         values ($1, $2, $3, $4, $5, $6, coalesce($7, '{}'), $8, $9, $10, $11)
         returning *",
    )
    .bind(Uuid::now_v7())
    .bind(store)
    .bind(f.name)
    .bind(f.brand.flatten())
    .bind(f.material_type)
    .bind(f.color.flatten())
    .bind(f.tags)
    .bind(f.price_per_1000g.flatten())
    .bind(f.diameter_mm.flatten())
    .bind(f.density_g_cm3.flatten())
    .bind(f.notes.flatten())
    .fetch_one(db)
    .await
}

pub async fn update_material(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: Uuid,
    f: MaterialFields,
) -> sqlx::Result<Option<MaterialRow>> {
    let mut u = Update::new("materials");
    u.set("name", f.name)
        .set("brand", f.brand)
        .set("material_type", f.material_type)
        .set("color", f.color)
        .set("tags", f.tags)
        .set("price_per_1000g", f.price_per_1000g)
        .set("diameter_mm", f.diameter_mm)
        .set("density_g_cm3", f.density_g_cm3)
        .set("notes", f.notes);
    u.run(db, store, id).await
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
