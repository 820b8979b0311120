//! The parts library: `parts` with `part_materials` (replaced whole). Every function is scoped
//! by store.

use crate::ids::StoreId;
use crate::list::{Field, Kind, Spec, CREATED_AT, UPDATED_AT};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PartRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub name: String,
    pub part_type: String,
    pub file_uris: Vec<String>,
    pub required_printer_tags: Vec<String>,
    pub estimated_seconds: Option<i32>,
    pub estimated_grams: Option<f64>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct PartFields {
    pub name: Option<String>,
    pub part_type: Option<String>,
    pub file_uris: Option<Vec<String>>,
    pub required_printer_tags: Option<Vec<String>>,
    pub estimated_seconds: Option<Option<i32>>,
    pub estimated_grams: Option<Option<f64>>,
    pub description: Option<Option<String>>,
}

/// One material a part needs.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PartMaterial {
    pub part_id: Uuid,
    pub material_id: Uuid,
    pub grams: Option<f64>,
}

impl super::Fields for PartFields {
    fn columns(self, columns: &mut super::Columns) {
        columns
            .set("name", self.name)
            .set("part_type", self.part_type)
            .set("file_uris", self.file_uris)
            .set("required_printer_tags", self.required_printer_tags)
            .set("estimated_seconds", self.estimated_seconds)
            .set("estimated_grams", self.estimated_grams)
            .set("description", self.description);
    }
}

pub async fn get_parts(
    db: impl PgExecutor<'_>,
    store: StoreId,
    ids: &[Uuid],
) -> sqlx::Result<Vec<PartRow>> {
    sqlx::query_as("select * from parts where store_id = $1 and id = any($2)")
        .bind(store)
        .bind(ids)
        .fetch_all(db)
        .await
}

/// The materials of these parts, in their listed order.
pub async fn part_materials(
    db: impl PgExecutor<'_>,
    store: StoreId,
    parts: &[Uuid],
) -> sqlx::Result<Vec<PartMaterial>> {
    sqlx::query_as(
        "select part_id, material_id, grams from part_materials
         where store_id = $1 and part_id = any($2) order by part_id, position",
    )
    .bind(store)
    .bind(parts)
    .fetch_all(db)
    .await
}

pub async fn replace_part_materials(
    tx: &mut PgConnection,
    store: StoreId,
    part: Uuid,
    materials: &[(Uuid, Option<f64>)],
) -> sqlx::Result<()> {
    sqlx::query("delete from part_materials where store_id = $1 and part_id = $2")
        .bind(store)
        .bind(part)
        .execute(&mut *tx)
        .await?;
    let ids: Vec<Uuid> = materials.iter().map(|m| m.0).collect();
    let grams: Vec<Option<f64>> = materials.iter().map(|m| m.1).collect();
    sqlx::query(
        "insert into part_materials (store_id, part_id, position, material_id, grams)
         select $1, $2, (ord - 1)::smallint, m, g from unnest($3::uuid[], $4::float8[]) with ordinality as t(m, g, ord)",
    )
    .bind(store)
    .bind(part)
    .bind(ids)
    .bind(grams)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl super::Table for PartRow {
    const NAME: &'static str = "parts";
}

/// What the list endpoint filters and sorts on: API names and their columns.
pub static LIST: Spec = Spec {
    fields: &[
        Field::new("name", "name", Kind::Text).sortable(),
        Field::new("type", "part_type", Kind::Name),
        Field::new("estimatedSeconds", "estimated_seconds", Kind::Integer).nullable(),
        CREATED_AT,
        UPDATED_AT,
    ],
    default_sort: "createdAt",
    default_descending: false,
};
