//! Parts (printable files, what they need, how long they take) as the API shows and events
//! carry them.

use super::entity::{entity_view, Stored};
use crate::db::parts::{self as db, PartMaterial, PartRow};
use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// The kind of file a part is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PartType {
    Stl,
    #[serde(rename = "3mf")]
    ThreeMf,
    Gcode,
    Step,
    Obj,
}

impl crate::wire::WireName for PartType {
    fn as_str(self) -> &'static str {
        match self {
            PartType::Stl => "stl",
            PartType::ThreeMf => "3mf",
            PartType::Gcode => "gcode",
            PartType::Step => "step",
            PartType::Obj => "obj",
        }
    }
}

/// A material a part needs, and how much of it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartMaterialView {
    /// A material of this store.
    pub material_id: Uuid,
    #[schema(minimum = 0, maximum = 100000)]
    pub grams: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    pub id: Uuid,
    pub store_id: StoreId,
    pub name: String,
    #[schema(example = "3mf")]
    #[schema(value_type = PartType)]
    pub r#type: String,
    /// Where the files are (http, https or s3 URLs).
    pub file_uris: Vec<String>,
    /// Only printers with all these tags may print it.
    pub required_printer_tags: Vec<String>,
    pub materials: Vec<PartMaterialView>,
    pub estimated_seconds: Option<i32>,
    pub estimated_grams: Option<f64>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Part {
    pub fn new(r: PartRow, materials: &[PartMaterial]) -> Self {
        Part {
            materials: materials
                .iter()
                .filter(|m| m.part_id == r.id)
                .map(|m| PartMaterialView {
                    material_id: m.material_id,
                    grams: m.grams,
                })
                .collect(),
            id: r.id,
            store_id: r.store_id,
            name: r.name,
            r#type: r.part_type,
            file_uris: r.file_uris,
            required_printer_tags: r.required_printer_tags,
            estimated_seconds: r.estimated_seconds,
            estimated_grams: r.estimated_grams,
            description: r.description,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

entity_view!(Part, Part);

impl Stored for Part {
    type Row = PartRow;

    async fn load(db: &mut PgConnection, store: StoreId, row: PartRow) -> sqlx::Result<Part> {
        let materials = db::part_materials(&mut *db, store, &[row.id]).await?;
        Ok(Part::new(row, &materials))
    }
}
