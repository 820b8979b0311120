//! SKUs: `skus` with `sku_parts` (replaced whole). Every function is scoped by store.

use crate::ids::StoreId;
use crate::list::{Field, Kind, Spec, CREATED_AT, UPDATED_AT};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SkuRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct SkuFields {
    pub sku: Option<String>,
    pub name: Option<String>,
    pub description: Option<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SkuPart {
    pub sku_id: Uuid,
    pub part_id: Uuid,
    pub quantity: i32,
}

impl super::Fields for SkuFields {
    fn columns(self, columns: &mut super::Columns) {
        columns
            .set("sku", self.sku)
            .set("name", self.name)
            .set("description", self.description);
    }
}

pub async fn sku_parts(
    db: impl PgExecutor<'_>,
    store: StoreId,
    skus: &[Uuid],
) -> sqlx::Result<Vec<SkuPart>> {
    sqlx::query_as(
        "select sku_id, part_id, quantity from sku_parts where store_id = $1 and sku_id = any($2) order by sku_id, position",
    )
    .bind(store)
    .bind(skus)
    .fetch_all(db)
    .await
}

pub async fn replace_sku_parts(
    tx: &mut PgConnection,
    store: StoreId,
    sku: Uuid,
    parts: &[(Uuid, i32)],
) -> sqlx::Result<()> {
    sqlx::query("delete from sku_parts where store_id = $1 and sku_id = $2")
        .bind(store)
        .bind(sku)
        .execute(&mut *tx)
        .await?;
    let ids: Vec<Uuid> = parts.iter().map(|p| p.0).collect();
    let quantities: Vec<i32> = parts.iter().map(|p| p.1).collect();
    sqlx::query(
        "insert into sku_parts (store_id, sku_id, position, part_id, quantity)
         select $1, $2, (ord - 1)::smallint, p, q from unnest($3::uuid[], $4::int4[]) with ordinality as t(p, q, ord)",
    )
    .bind(store)
    .bind(sku)
    .bind(ids)
    .bind(quantities)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl super::Table for SkuRow {
    const NAME: &'static str = "skus";
}

/// What the list endpoint filters and sorts on: API names and their columns.
pub static LIST: Spec = Spec {
    fields: &[
        Field::new("sku", "sku", Kind::Text).sortable(),
        Field::new("name", "name", Kind::Text).sortable(),
        CREATED_AT,
        UPDATED_AT,
    ],
    default_sort: "createdAt",
    default_descending: false,
};
