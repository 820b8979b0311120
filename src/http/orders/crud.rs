//! Listing, adding, reading, changing and removing orders.

use super::*;

async fn items(
    e: &mut Errors,
    tx: &mut PgConnection,
    store: StoreId,
    values: &[NewOrderItem],
) -> ApiResult<Vec<NewItem>> {
    if values.is_empty() || values.len() > MAX_ITEMS {
        // Nothing more is checked of a list this long (one problem, not one per entry, and no
        // lookup of thousands of SKUs for an answer that is a refusal anyway).
        e.add(
            "/items",
            "invalid_length",
            format!("1 to {MAX_ITEMS} items"),
        );
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(values.len());
    for (i, item) in values.iter().enumerate() {
        e.in_range(
            &format!("/items/{i}/quantity"),
            Some(item.quantity),
            1..=10_000,
        );
        let external_sku = item
            .external_sku
            .as_deref()
            .map(|c| e.name(&format!("/items/{i}/externalSku"), c, 100));
        if item.sku_id.is_some() == external_sku.is_some() {
            e.add(
                format!("/items/{i}"),
                "invalid_value",
                "give exactly one of skuId and externalSku",
            );
        }
        out.push(NewItem {
            sku_id: item.sku_id,
            external_sku,
            quantity: item.quantity,
        });
    }
    let ids: Vec<Uuid> = values.iter().filter_map(|i| i.sku_id).collect();
    let found = db::existing_skus(&mut *tx, store, &ids).await?;
    for (i, item) in values.iter().enumerate() {
        if let Some(id) = item.sku_id {
            if !found.contains(&id) {
                e.add(
                    format!("/items/{i}/skuId"),
                    "not_found",
                    "no such SKU in this store",
                );
            }
        }
    }
    Ok(out)
}

impl From<CreateOrder> for UpdateOrder {
    fn from(c: CreateOrder) -> Self {
        UpdateOrder {
            order_number: Some(c.order_number),
            source: Some(c.source.unwrap_or(OrderSource::Manual)),
            customer_name: Some(c.customer_name),
            notes: Some(c.notes),
            items: Some(c.items),
        }
    }
}

/// What to write, validated (the items' SKUs against the store): a create is an update of every
/// field. The items, when given, replace the order's.
async fn fields(
    tx: &mut PgConnection,
    store: StoreId,
    body: UpdateOrder,
) -> ApiResult<(OrderFields, Option<Vec<NewItem>>)> {
    let mut e = Errors::default();
    let fields = OrderFields {
        order_number: body
            .order_number
            .map(|v| e.optional_text("/orderNumber", v.as_deref(), 100)),
        source: body.source.map(|s| s.as_str().to_owned()),
        customer_name: body
            .customer_name
            .map(|v| e.optional_text("/customerName", v.as_deref(), 200)),
        notes: body
            .notes
            .map(|v| e.optional_text("/notes", v.as_deref(), 2000)),
    };
    let new_items = match &body.items {
        Some(values) => Some(items(&mut e, tx, store, values).await?),
        None => None,
    };
    e.finish()?;
    Ok((fields, new_items))
}

/// List the store's orders.
///
/// Required permission: `order.view`. Filter with the `field.op` query parameters; sort by
/// `createdAt` (default) or `updatedAt`.
#[utoipa::path(get, path = "/v1/orders", tag = "Orders",
    params(PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^((createdAt|updatedAt)(:(asc|desc))?)?$")),
    responses((status = 200, description = "The orders", body = Vec<Order>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::OrderView)?;
    let (list, page, total) =
        paging::fetch::<OrderRow>(&state.pool, caller.store_id, query.as_deref(), &db::LIST)
            .await?;
    let ids: Vec<Uuid> = page.rows.iter().map(|r| r.id).collect();
    let items = db::items(&state.pool, caller.store_id, &ids).await?;
    let items = paging::ByParent::new(items, |i| i.order_id);
    let view = |r: OrderRow| {
        let id = r.id;
        Order::new(r, items.of(id))
    };
    Ok(Page::new(page, view, "/v1/orders", &list, total).into_response())
}

/// Add an order.
///
/// Required permission: `order.create`. Emits `order.created_manual` for `manual` orders and
/// `order.created_retail` for the others.
#[utoipa::path(post, path = "/v1/orders", tag = "Orders", request_body = CreateOrder,
    responses((status = 201, description = "Created", body = Order,
        headers(("location" = String, description = "The new order's URL")))))]
pub async fn create_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateOrder>,
) -> ApiResult<Response> {
    caller.require(Permission::OrderCreate)?;
    let event = match body.source.unwrap_or(OrderSource::Manual) {
        OrderSource::Manual => EventType::OrderCreatedManual,
        _ => EventType::OrderCreatedRetail,
    };
    let mut tx = state.pool.begin().await?;
    let (fields, items) = fields(&mut tx, caller.store_id, body.into()).await?;
    let row = crate::db::insert::<OrderRow>(&mut *tx, caller.store_id, fields).await?;
    let items = items.unwrap_or_default();
    db::replace_items(&mut tx, caller.store_id, row.id, &items).await?;
    let order = <Order as Stored>::load(&mut tx, caller.store_id, row).await?;
    changes::created(&mut tx, &caller, &order).await?;
    changes::event(&mut tx, &caller, event, order.id, &order).await?;
    tx.commit().await?;
    Ok(Created::at("/v1/orders", order).into_response())
}

/// One order.
///
/// Required permission: `order.view`.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "Orders", params(OrderPath),
    responses((status = 200, description = "The order", body = Order)))]
pub async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OrderPath>,
) -> ApiResult<Json<Order>> {
    caller.require(Permission::OrderView)?;
    entity::one(&state.pool, caller.store_id, path.id).await
}

/// Change an order.
///
/// Required permission: `order.edit`. Replacing `items` after any item has been printed answers
/// `409 conflict`.
#[utoipa::path(patch, path = "/v1/orders/{id}", tag = "Orders", params(OrderPath), request_body = UpdateOrder,
    responses((status = 200, description = "The updated order", body = Order),
        (status = 409, description = "Items were already printed", body = Problem, content_type = "application/problem+json")))]
pub async fn update_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OrderPath>,
    ApiJson(body): ApiJson<UpdateOrder>,
) -> ApiResult<Json<Order>> {
    caller.require(Permission::OrderEdit)?;
    let mut tx = state.pool.begin().await?;
    let (fields, new_items) = fields(&mut tx, caller.store_id, body).await?;
    let before = entity::locked::<Order>(&mut tx, caller.store_id, path.id).await?;
    if new_items.is_some() && before.items.iter().any(|i| i.processed_at.is_some()) {
        return Err(ApiError::Conflict(
            "items already printed cannot be replaced".to_owned(),
        ));
    }
    let row = crate::db::update::<OrderRow>(&mut *tx, caller.store_id, path.id, fields)
        .await
        .found()?;
    if let Some(new_items) = new_items {
        db::replace_items(&mut tx, caller.store_id, path.id, &new_items).await?;
    }
    entity::updated(tx, &caller, before, row).await
}

/// Remove an order.
///
/// Required permission: `order.delete`. Its print jobs stay in the queue, no longer linked.
#[utoipa::path(delete, path = "/v1/orders/{id}", tag = "Orders", params(OrderPath),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OrderPath>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::OrderDelete)?;
    let (mut tx, before) = entity::lock::<Order>(&state.pool, caller.store_id, path.id).await?;
    let link = Link::Order(OrderId(path.id));
    jobs::unlink_jobs(&mut tx, &Author::from(&caller), link).await?;
    entity::deleted(tx, &caller, before, None).await
}
