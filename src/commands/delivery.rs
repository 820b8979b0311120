//! Delivers recorded printer commands, at most once: leases pending ones (`SKIP LOCKED`; a
//! lapsed lease is taken again), notes them handed over, publishes each to its printer's request
//! topic, and marks it `sent` once the broker has it or may have it (`failed` at once if
//! the printer's provider takes no commands). The printer's answer, read by the telemetry
//! bridge, moves it to `acknowledged` or `failed` (`answer`); one unanswered for 10 minutes
//! fails (`give_up_unanswered`). Each status change is recorded (`printerCommand.updated`).

use super::vendor;
use crate::db::commands as db;
use crate::domain::printer_commands::CommandStatus;
use crate::domain::printer_commands::{set_status, Command};
use crate::domain::Author;
use crate::ids::{CommandId, PrinterId, StoreId};
use crate::mqtt::{Broker, Message, Outcomes};
use crate::wire::WireName;
use crate::worker::{self, Pace, Wakeups};
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const BATCH: i64 = 100;
const POLL: Duration = Duration::from_millis(250);
/// Without a broker there is only expiry to do.
const WITHOUT_BROKER_POLL: Duration = Duration::from_secs(10);
const LEASE_SECS: f64 = 30.0;
/// A command not delivered this long after it was sent (the broker was away) fails instead:
/// a pause or a temperature meant for then must not reach a printer hours later.
pub const EXPIRE_AFTER: Duration = Duration::from_secs(300);

/// A command sent but not answered this long fails: the printer never got it (it was offline
/// when it was published), or cannot say. Generous: Moonraker answers a G-code only once it has
/// run (a filament load, a homing).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(600);
/// How often the worker looks for commands to give up on.
const GIVE_UP_EVERY: Duration = Duration::from_secs(30);

/// Fails the commands sent but unanswered for `ANSWER_WITHIN`, a batch at a time; returns how
/// many. An answer that comes later is ignored (`answer` moves only unanswered commands).
pub async fn give_up_unanswered(pool: &PgPool) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let rows = db::lock_unanswered(&mut *tx, ANSWER_WITHIN.as_secs_f64(), BATCH).await?;
    let gave_up = rows.len();
    if gave_up == 0 {
        return Ok(0);
    }
    for row in rows {
        let author = Author::telemetry(row.store_id);
        let why = "no answer from the printer within 10 minutes of sending it";
        set_status(&mut tx, &author, row, CommandStatus::Failed, Some(why)).await?;
    }
    tx.commit().await?;
    Ok(gave_up)
}

/// Publishes one batch; returns how many commands it handled. Without a broker (none is
/// configured) nothing is sent, but commands past `EXPIRE_AFTER` still fail as expired.
pub async fn deliver_once(pool: &PgPool, broker: Option<&Broker>) -> anyhow::Result<usize> {
    let pending = db::lease_pending(pool, BATCH, LEASE_SECS).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let mut messages = Vec::new();
    let mut sent = Vec::new();
    let mut refused = Vec::new();
    let expired_before = chrono::Utc::now()
        - chrono::TimeDelta::from_std(EXPIRE_AFTER).unwrap_or(chrono::TimeDelta::MAX);
    // Handed to the broker by a delivery that stopped before marking them: they may have
    // arrived, so they count as sent and are not published again.
    let mut handed_before = Vec::new();
    for p in pending {
        if p.command.handed_at.is_some() {
            handed_before.push(p.command.id);
            continue;
        }
        if p.command.created_at < expired_before {
            refused.push((
                p.command.id,
                "expired: not delivered within 5 minutes of being sent",
            ));
            continue;
        }
        let request = Command::from_row(&p.command)
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
    // Message by message: a command the broker took (or may have taken) must not be sent again
    // because another in its batch was not (a relative move would run twice).
    // Without a broker nothing is answered: every command waits (and expires).
    let answers = match broker {
        Some(broker) if !messages.is_empty() => {
            db::mark_handed(pool, &sent).await?;
            broker.publish_each(messages).await
        }
        _ => Vec::new(),
    };
    let Outcomes {
        taken,
        too_large,
        again,
        unconfirmed,
        failure,
    } = Outcomes::sort(sent, answers);
    // A command the broker may have taken counts as sent, and is never sent again: the
    // printer's answer (or its silence) says the rest. At most once, as a relative move or an
    // extrusion must not run twice.
    let sent: Vec<uuid::Uuid> = taken
        .into_iter()
        .chain(unconfirmed)
        .chain(handed_before)
        .collect();
    refused.extend(
        too_large
            .into_iter()
            .map(|id| (id, "too large for an MQTT message")),
    );
    let handled = sent.len() + refused.len();
    let mut tx = pool.begin().await?;
    let mut outcomes: Vec<_> = sent
        .into_iter()
        .map(|id| (id, CommandStatus::Sent, None))
        .chain(
            refused
                .into_iter()
                .map(|(id, why)| (id, CommandStatus::Failed, Some(why))),
        )
        .collect();
    // Locked in id order, as every batch of rows is, so two replicas marking overlapping
    // batches (one's lease lapsed) cannot wait on each other.
    outcomes.sort_by_key(|(id, _, _)| *id);
    for (id, status, why) in outcomes {
        // Still pending: the printer may already have answered (and that answer stands).
        if let Some(row) = db::pending_for_update(&mut *tx, id).await? {
            let author = Author::telemetry(row.store_id);
            set_status(&mut tx, &author, row, status, why).await?;
        }
    }
    tx.commit().await?;
    // Only once those the broker took are marked: an error here must not leave them pending.
    if !again.is_empty() {
        // Hand these back at once (a dead process's lease lapses by itself).
        db::release(pool, &again).await?;
    }
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(handled),
    }
}

/// Records a printer's answer to a command it was sent: `acknowledged`, or `failed` with why.
/// Answers to unknown, other printers' or already answered commands are ignored.
pub async fn answer(
    pool: &PgPool,
    store: StoreId,
    printer: PrinterId,
    command: CommandId,
    error: Option<&str>,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    // No status in the filter: the answer can arrive before the delivery worker has marked the
    // command `sent` (it does so only after the broker's acknowledgement), and a filtered read
    // could judge an old version and miss it. A `pending` command can be answered too.
    let row = db::get_for_update(&mut *tx, store, printer, command).await?;
    let unanswered = [CommandStatus::Sent, CommandStatus::Pending].map(WireName::as_str);
    if let Some(row) = row.filter(|r| unanswered.contains(&r.status.as_str())) {
        let status = if error.is_some() {
            CommandStatus::Failed
        } else {
            CommandStatus::Acknowledged
        };
        set_status(&mut tx, &Author::telemetry(store), row, status, error).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Runs until `shutdown`, polling for pending commands (without a broker, only to expire them).
pub async fn run(pool: PgPool, broker: Option<Broker>, shutdown: CancellationToken) {
    let wakeups = Wakeups {
        channel: None,
        local: None,
    };
    let poll = if broker.is_some() {
        POLL
    } else {
        WITHOUT_BROKER_POLL
    };
    let pace = Pace {
        poll,
        retry: poll * 4,
    };
    // Giving up is a matter of minutes: looked for every `GIVE_UP_EVERY`, not at every poll.
    let gave_up_at = std::sync::Mutex::new(None::<std::time::Instant>);
    worker::run("commands", &pool, wakeups, pace, shutdown, || async {
        let delivered = deliver_once(&pool, broker.as_ref()).await?;
        let due = {
            let mut at = gave_up_at.lock().unwrap_or_else(|e| e.into_inner());
            let due = at.is_none_or(|at| at.elapsed() >= GIVE_UP_EVERY);
            if due {
                *at = Some(std::time::Instant::now());
            }
            due
        };
        let gave_up = if due {
            give_up_unanswered(&pool).await?
        } else {
            0
        };
        Ok(delivered >= BATCH as usize || gave_up >= BATCH as usize)
    })
    .await;
}
