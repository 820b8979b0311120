//! Planning print jobs: from a part, and from order items (one job per item and part of its SKU,
//! for item quantity × part quantity copies). Pure: the caller reads the rows and writes the jobs.

use crate::db::orders::PrintableItem;
use crate::db::parts::{PartMaterial, PartRow};
use crate::db::print_jobs::NewJob;
use crate::db::skus::SkuPart;
use crate::db::CreatedBy;
use uuid::Uuid;

/// A job for `part`, with the part's name, tags, materials and estimates, created by
/// `created_by` (the key or user that asked for it).
pub fn job_from_part(
    part: &PartRow,
    materials: &[PartMaterial],
    quantity: i32,
    priority: i32,
    created_by: CreatedBy,
) -> NewJob {
    NewJob {
        part_id: part.id,
        name: part.name.clone(),
        quantity,
        priority,
        required_printer_tags: part.required_printer_tags.clone(),
        material_ids: materials
            .iter()
            .filter(|m| m.part_id == part.id)
            .map(|m| m.material_id)
            .collect(),
        order_id: None,
        order_item_id: None,
        estimated_seconds: part.estimated_seconds,
        estimated_grams: part.estimated_grams,
        notes: None,
        created_by_key_id: created_by.key,
        created_by_user_id: created_by.user,
    }
}

/// What order items need to be planned: their SKUs' parts, with those parts' rows and materials.
pub struct Catalog<'a> {
    pub sku_parts: &'a [SkuPart],
    pub parts: &'a [PartRow],
    pub materials: &'a [PartMaterial],
}

/// The jobs for `items`, in item order then in the order of each SKU's parts. The same part
/// listed twice in a SKU is one job with the quantities added; a part no longer found is skipped.
pub fn jobs_for_items(
    items: &[PrintableItem],
    catalog: &Catalog<'_>,
    priority: i32,
    created_by: CreatedBy,
) -> Vec<NewJob> {
    let mut planned = Vec::new();
    for item in items {
        let mut per_part: Vec<(Uuid, i64)> = Vec::new();
        for link in catalog.sku_parts.iter().filter(|l| l.sku_id == item.sku_id) {
            match per_part.iter_mut().find(|(p, _)| *p == link.part_id) {
                Some((_, q)) => *q += i64::from(link.quantity),
                None => per_part.push((link.part_id, i64::from(link.quantity))),
            }
        }
        for (part_id, per_item) in per_part {
            let Some(part) = catalog.parts.iter().find(|p| p.id == part_id) else {
                continue;
            };
            // At most 10,000 (item) × 50 links × 1,000 (link) = 5×10^8, within an i32.
            let copies = i32::try_from(i64::from(item.quantity) * per_item).unwrap_or(i32::MAX);
            let mut job = job_from_part(part, catalog.materials, copies, priority, created_by);
            job.order_id = Some(item.order_id);
            job.order_item_id = Some(item.item_id);
            planned.push(job);
        }
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::StoreId;
    use chrono::Utc;

    fn part(name: &str, grams: f64) -> PartRow {
        PartRow {
            id: Uuid::now_v7(),
            store_id: StoreId(Uuid::nil()),
            name: name.to_owned(),
            part_type: "3mf".to_owned(),
            file_uris: vec![],
            required_printer_tags: vec!["pla".to_owned()],
            estimated_seconds: Some(600),
            estimated_grams: Some(grams),
            description: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn item(sku: Uuid, quantity: i32) -> PrintableItem {
        PrintableItem {
            item_id: Uuid::now_v7(),
            order_id: Uuid::now_v7(),
            sku_id: sku,
            quantity,
        }
    }

    #[test]
    fn one_job_per_item_and_part_with_quantities_multiplied_and_repeats_added() {
        let (body, lid) = (part("body", 20.0), part("lid", 5.0));
        let (box_sku, other_sku) = (Uuid::now_v7(), Uuid::now_v7());
        let link = |sku, part: &PartRow, quantity| SkuPart {
            sku_id: sku,
            part_id: part.id,
            quantity,
        };
        let sku_parts = [
            link(box_sku, &body, 1),
            link(box_sku, &lid, 2),
            link(box_sku, &body, 3),
            link(other_sku, &lid, 1),
        ];
        let materials = [PartMaterial {
            part_id: lid.id,
            material_id: Uuid::now_v7(),
            grams: Some(5.0),
        }];
        let parts = [body.clone(), lid.clone()];
        let catalog = Catalog {
            sku_parts: &sku_parts,
            parts: &parts,
            materials: &materials,
        };
        let items = [item(box_sku, 5), item(other_sku, 2)];
        let key = Some(Uuid::now_v7());
        let creator = CreatedBy { key, user: None };
        let jobs = jobs_for_items(&items, &catalog, 70, creator);
        let summary: Vec<(Uuid, i32, Option<Uuid>)> = jobs
            .iter()
            .map(|j| (j.part_id, j.quantity, j.order_item_id))
            .collect();
        assert_eq!(
            summary,
            vec![
                (body.id, 20, Some(items[0].item_id)),
                (lid.id, 10, Some(items[0].item_id)),
                (lid.id, 2, Some(items[1].item_id)),
            ]
        );
        assert!(jobs.iter().all(|j| j.priority == 70
            && j.created_by_key_id == key
            && j.created_by_user_id.is_none()));
        assert_eq!(jobs[1].material_ids, vec![materials[0].material_id]);
        assert!(jobs[0].material_ids.is_empty());
        assert_eq!(jobs[2].order_id, Some(items[1].order_id));
        assert_eq!(jobs[0].name, "body");
        assert_eq!(jobs[0].required_printer_tags, vec!["pla".to_owned()]);
    }

    #[test]
    fn items_of_skus_without_known_parts_plan_nothing() {
        let missing = part("gone", 1.0);
        let sku = Uuid::now_v7();
        let sku_parts = [SkuPart {
            sku_id: sku,
            part_id: missing.id,
            quantity: 1,
        }];
        let catalog = Catalog {
            sku_parts: &sku_parts,
            parts: &[],
            materials: &[],
        };
        assert!(jobs_for_items(&[item(sku, 1)], &catalog, 50, CreatedBy::default()).is_empty());
        assert!(jobs_for_items(
            &[item(Uuid::now_v7(), 1)],
            &catalog,
            50,
            CreatedBy::default()
        )
        .is_empty());
    }

    #[test]
    fn huge_quantities_saturate_instead_of_overflowing() {
        let p = part("p", 1.0);
        let sku = Uuid::now_v7();
        let sku_parts = [SkuPart {
            sku_id: sku,
            part_id: p.id,
            quantity: i32::MAX,
        }];
        let parts = [p];
        let catalog = Catalog {
            sku_parts: &sku_parts,
            parts: &parts,
            materials: &[],
        };
        let jobs = jobs_for_items(&[item(sku, 10_000)], &catalog, 50, CreatedBy::default());
        assert_eq!(jobs[0].quantity, i32::MAX);
    }
}
