//! Cancelling, closing and reopening an order.

use super::*;

/// Moves an order to `to`, recording the change and the event entering `to` emits, if any.
async fn set_status(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    to: OrderStatus,
) -> ApiResult<(PgTx, Order)> {
    let (mut tx, before) = entity::lock::<Order>(&state.pool, caller.store_id, id).await?;
    if !before.status.can_become(to) {
        return Err(ApiError::InvalidStateTransition(format!(
            "a {} order cannot become {}",
            before.status.as_str(),
            to.as_str()
        )));
    }
    let row = db::set_status(&mut *tx, caller.store_id, id, to.as_str()).await?;
    let after = <Order as Stored>::load(&mut tx, caller.store_id, row).await?;
    changes::updated(&mut tx, caller, &before, &after).await?;
    if let Some(event) = to.event_on_entry() {
        changes::event(&mut tx, caller, event, id, &after).await?;
    }
    Ok((tx, after))
}

type PgTx = sqlx::Transaction<'static, sqlx::Postgres>;

/// Cancel an open order.
///
/// Required permission: `order.edit`. Emits `order.cancelled`; the order's jobs that have not
/// started printing (`queued`, `assigned`) are cancelled with it, each emitting `job.cancelled`.
/// A cancelled or closed order answers `409 invalid_state_transition`.
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "Orders", params(OrderPath),
    responses((status = 200, description = "The cancelled order", body = Order),
        (status = 409, description = "The order is not open", body = Problem, content_type = "application/problem+json")))]
pub async fn cancel_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OrderPath>,
) -> ApiResult<Json<Order>> {
    caller.require(Permission::OrderEdit)?;
    let (mut tx, order) = set_status(&state, &caller, path.id, OrderStatus::Cancelled).await?;
    for job in jobs_db::lock_unstarted_of_order(&mut *tx, caller.store_id, path.id).await? {
        jobs::transition(
            &mut tx,
            &Author::from(&caller),
            PrintJob::from(job),
            JobState::Cancelled,
            None,
            None,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(order))
}

/// Close (fulfil) an open order.
///
/// Required permission: `order.edit`. Emits `order.closed`. Jobs made for it stay as they are,
/// queued ones too (it may have been fulfilled from stock while they wait): cancel those no
/// longer wanted. A cancelled or closed order answers `409 invalid_state_transition`.
#[utoipa::path(post, path = "/v1/orders/{id}/close", tag = "Orders", params(OrderPath),
    responses((status = 200, description = "The closed order", body = Order),
        (status = 409, description = "The order is not open", body = Problem, content_type = "application/problem+json")))]
pub async fn close_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OrderPath>,
) -> ApiResult<Json<Order>> {
    caller.require(Permission::OrderEdit)?;
    let (tx, order) = set_status(&state, &caller, path.id, OrderStatus::Closed).await?;
    tx.commit().await?;
    Ok(Json(order))
}

/// Reopen a cancelled or closed order.
///
/// Required permission: `order.edit`. Its unprocessed items become printable again; items
/// already made into jobs stay processed (`orders/print` does not make them again), and jobs
/// cancelled with the order go back to the queue with `PATCH /v1/print-jobs/retry`. An open
/// order answers `409 invalid_state_transition`.
#[utoipa::path(post, path = "/v1/orders/{id}/reopen", tag = "Orders", params(OrderPath),
    responses((status = 200, description = "The reopened order", body = Order),
        (status = 409, description = "The order is already open", body = Problem, content_type = "application/problem+json")))]
pub async fn reopen_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OrderPath>,
) -> ApiResult<Json<Order>> {
    caller.require(Permission::OrderEdit)?;
    let (tx, order) = set_status(&state, &caller, path.id, OrderStatus::Open).await?;
    tx.commit().await?;
    Ok(Json(order))
}
