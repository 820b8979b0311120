//! Delivers recorded printer commands: leases pending ones (`SKIP LOCKED`; a lapsed lease is
//! taken again), publishes each to its printer's request topic, and marks it `sent` once the
//! broker has it (`failed` at once if
//! the printer's provider takes no commands). The printer's answer, read by the telemetry
//! bridge, moves it to `acknowledged` or `failed` (`answer`). Each status change is recorded
//! (`printerCommand.updated`).

use super::vendor;
use crate::db::printer_commands::CommandRow;
use crate::events::outbox::Action;
use crate::http::printer_commands::{Command, PrinterCommand};
use crate::ids::StoreId;
use crate::mqtt::{Broker, Message};
use crate::mutation::{self, Author};
use crate::worker::{self, Pace, Wakeups};
use serde_json::Value;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const BATCH: i64 = 100;
const POLL: Duration = Duration::from_millis(250);

#[derive(sqlx::FromRow)]
struct Pending {
    #[sqlx(flatten)]
    command: CommandRow,
    provider: String,
    device_id: String,
}

/// The stored command back as a `Command` (its name plus its arguments).
fn parse(row: &CommandRow) -> Option<Command> {
    let mut value = row.args.clone();
    let object = value.as_object_mut()?;
    object.insert("command".into(), Value::String(row.command.clone()));
    serde_json::from_value(value).ok()
}

async fn set_status(
    tx: &mut sqlx::PgConnection,
    row: CommandRow,
    status: &str,
    error: Option<&str>,
) -> anyhow::Result<()> {
    let before = PrinterCommand::from(row.clone());
    let updated: CommandRow = sqlx::query_as(
        "update printer_commands set status = $2, error = $3, updated_at = now()
          where id = $1 returning *",
    )
    .bind(row.id)
    .bind(status)
    .bind(error)
    .fetch_one(&mut *tx)
    .await?;
    let after = PrinterCommand::from(updated);
    mutation::record(
        tx,
        Author::telemetry(row.store_id),
        "printerCommand",
        row.id,
        Action::Update,
        Some(&before),
        Some(&after),
    )
    .await?;
    Ok(())
}

/// Publishes one batch; returns how many commands it handled.
pub async fn deliver_once(pool: &PgPool, broker: &Broker) -> anyhow::Result<usize> {
    // Lease the batch in one short statement: no lock is held while the broker acknowledges.
    let pending: Vec<Pending> = sqlx::query_as(
        "with leased as (
             update printer_commands set delivery_lease_until = clock_timestamp() + interval '30 seconds'
              where id in (
                  select id from printer_commands
                   where status = 'pending'
                     and (delivery_lease_until is null or delivery_lease_until < clock_timestamp())
                   order by created_at limit $1 for update skip locked)
             returning *)
         select l.*, p.provider, p.device_id from leased l join printers p on p.id = l.printer_id",
    )
    .bind(BATCH)
    .fetch_all(pool)
    .await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let mut messages = Vec::new();
    let mut sent = Vec::new();
    let mut refused = Vec::new();
    for p in pending {
        let request = parse(&p.command)
            .ok_or("the stored command no longer parses")
            .and_then(|c| {
                vendor::request(
                    p.command.store_id.0,
                    &p.provider,
                    &p.device_id,
                    p.command.id,
                    &c,
                )
            });
        match request {
            Ok((topic, body)) => {
                messages.push(Message {
                    topic,
                    payload: body.to_string().into_bytes(),
                    retain: false,
                });
                sent.push(p.command.id);
            }
            Err(why) => refused.push((p.command.id, why)),
        }
    }
    if let Err(error) = broker.publish_confirmed(messages).await {
        // Hand the batch back at once (a dead process's lease lapses by itself).
        sqlx::query("update printer_commands set delivery_lease_until = null where id = any($1)")
            .bind(&sent)
            .execute(pool)
            .await?;
        return Err(error.into());
    }
    let handled = sent.len() + refused.len();
    let mut tx = pool.begin().await?;
    let outcomes = sent.into_iter().map(|id| (id, "sent", None)).chain(
        refused
            .into_iter()
            .map(|(id, why)| (id, "failed", Some(why))),
    );
    for (id, status, why) in outcomes {
        // Still pending: the printer may already have answered (and that answer stands).
        let row: Option<CommandRow> = sqlx::query_as(
            "select * from printer_commands where id = $1 and status = 'pending' for update",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row {
            set_status(&mut tx, row, status, why).await?;
        }
    }
    tx.commit().await?;
    Ok(handled)
}

/// Records a printer's answer to a command it was sent: `acknowledged`, or `failed` with why.
/// Answers to unknown, other printers' or already answered commands are ignored.
pub async fn answer(
    pool: &PgPool,
    store: StoreId,
    printer: Uuid,
    command: Uuid,
    error: Option<&str>,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    // No status in the filter: the answer can arrive before the delivery worker has marked the
    // command `sent` (it does so only after the broker's acknowledgement), and a filtered read
    // could judge an old version and miss it. A `pending` command can be answered too.
    let row: Option<CommandRow> = sqlx::query_as(
        "select * from printer_commands where store_id = $1 and printer_id = $2 and id = $3
         for update",
    )
    .bind(store)
    .bind(printer)
    .bind(command)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = row.filter(|r| r.status == "sent" || r.status == "pending") {
        let status = if error.is_some() {
            "failed"
        } else {
            "acknowledged"
        };
        set_status(&mut tx, row, status, error).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Runs until `shutdown`, polling for pending commands.
pub async fn run(pool: PgPool, broker: Broker, shutdown: CancellationToken) {
    let wakeups = Wakeups {
        channel: None,
        local: None,
    };
    let pace = Pace {
        poll: POLL,
        retry: POLL * 4,
    };
    worker::run("commands", &pool, wakeups, pace, shutdown, || async {
        Ok(deliver_once(&pool, &broker).await? >= BATCH as usize)
    })
    .await;
}
