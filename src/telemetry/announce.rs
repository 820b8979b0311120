//! What a printer's change announces, in one transaction: its reachability and alert events,
//! and its job moved through each status it reported (`follow_job`), with the rules for which
//! reports move which job.

use super::state::{Alert, PrinterState};
use crate::db::{print_jobs as jobs_db, printers as printers_db};
use crate::domain::print_jobs::{transition, PrintJob};
use crate::domain::printers::{PrinterAlert, PrinterConnectivity, PrinterStatus};
use crate::domain::queue::JobState;
use crate::domain::{changes, Author, EventType};
use crate::ids::{PrinterId, StoreId};
use crate::wire::WireName;
use sqlx::PgPool;

/// A printer's change to announce: its events, and its job moved through each status step, in
/// one transaction.
pub(super) struct Announced<'a> {
    pub(super) store: StoreId,
    pub(super) printer: PrinterId,
    pub(super) previous: &'a PrinterState,
    pub(super) next: &'a PrinterState,
    pub(super) steps: &'a [PrinterState],
}

impl Announced<'_> {
    pub(super) async fn make(&self, pool: &PgPool) -> anyhow::Result<()> {
        let mut tx = pool.begin().await?;
        let author = Author::telemetry(self.store);
        if self.next.online != self.previous.online {
            let event = if self.next.online {
                EventType::PrinterOnline
            } else {
                EventType::PrinterOffline
            };
            let about = PrinterConnectivity {
                printer_id: self.printer.0,
                online: self.next.online,
            };
            changes::event(&mut tx, &author, event, self.printer.0, &about).await?;
        }
        for alert in self
            .next
            .alerts
            .iter()
            .filter(|a| !self.previous.alerts.contains(a))
        {
            let event = if alert.severity == "error" {
                EventType::PrinterHmsError
            } else {
                EventType::PrinterHmsWarning
            };
            let raised = PrinterAlert {
                printer_id: self.printer.0,
                code: alert.code.clone(),
                severity: alert.severity.to_owned(),
            };
            changes::event(&mut tx, &author, event, self.printer.0, &raised).await?;
        }
        // The printer is locked before its job, as every change involving both does: a job
        // started by hand checks under the same lock that the printer is free.
        let printer_kept = !self.steps.is_empty()
            && !crate::db::lock_many_for_change::<printers_db::PrinterRow>(
                &mut *tx,
                self.store,
                &[self.printer.0],
            )
            .await?
            .is_empty();
        if printer_kept {
            let mut was = self.previous.status.clone();
            for step in self.steps {
                follow_job(&mut tx, &author, self.printer, &was, step).await?;
                was = step.status.clone();
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The most statuses kept while a printer is over budget; past it the oldest go.
const MAX_STEPS: usize = 8;

/// `steps` (the states of each status since the `announced` one, as last reported in it) with
/// `next` added: a step of its own if its status differs from the last, else that step's
/// latest report (a failure's alerts may follow its status).
pub(super) fn with_step(
    mut steps: Vec<PrinterState>,
    announced: &str,
    next: &PrinterState,
) -> Vec<PrinterState> {
    let at = steps.last().map_or(announced, |step| step.status.as_str());
    if at != next.status {
        if steps.len() == MAX_STEPS {
            steps.remove(0);
        }
        steps.push(next.clone());
    } else if let Some(last) = steps.last_mut() {
        *last = next.clone();
    }
    steps
}

/// Whether going from `previous` to `next` is announced (events, the job moved) and written at
/// once: a change of status, reachability or alerts.
pub(super) fn announces(previous: &PrinterState, next: &PrinterState) -> bool {
    previous.status != next.status
        || previous.online != next.online
        || previous.alerts != next.alerts
}

/// Moves the printer's current job along with the printer's reported status.
async fn follow_job(
    tx: &mut sqlx::PgConnection,
    author: &Author,
    printer: PrinterId,
    was: &str,
    state: &PrinterState,
) -> anyhow::Result<()> {
    let Some(job) =
        jobs_db::active_on_printer_for_update(&mut *tx, author.store_id, printer).await?
    else {
        return Ok(());
    };
    let before = PrintJob::from(job);
    // Whether the printer was at work just before this report: a failure then is this print's,
    // even for a job it had not yet reported printing (one that fails while preparing).
    // Otherwise a printer keeps reporting how its last print ended until it starts the next
    // (and says so again when it comes back online), which is old news for a job just
    // assigned to it.
    let was_working = [
        PrinterStatus::Preparing,
        PrinterStatus::Printing,
        PrinterStatus::Paused,
    ]
    .map(PrinterStatus::as_str)
    .contains(&was);
    // Printing or paused just before: the print it is at is not a job only assigned to it (one
    // cancelled in the API that the printer did not stop, or a print started by hand), so a
    // pause and resume of that print does not start the next job.
    let was_printing = [PrinterStatus::Printing, PrinterStatus::Paused]
        .map(PrinterStatus::as_str)
        .contains(&was);
    let to = match (state.status.as_str(), before.state) {
        ("printing", JobState::Assigned) if was_printing => return Ok(()),
        ("printing", _) => JobState::Printing,
        ("paused", _) => JobState::Paused,
        ("completed", JobState::Printing | JobState::Paused) => JobState::Completed,
        ("failed", JobState::Printing | JobState::Paused) => JobState::Failed,
        ("failed", JobState::Assigned) if was_working => JobState::Failed,
        // Idle in the middle of a print: it was stopped (at the printer, or by a command). An
        // assigned job waits for an idle printer, so that is left alone.
        ("idle", JobState::Printing | JobState::Paused) => JobState::Cancelled,
        // Stopped while preparing it (a Bambu print stopped then reports as idle).
        ("idle", JobState::Assigned) if was == PrinterStatus::Preparing.as_str() => {
            JobState::Cancelled
        }
        _ => return Ok(()),
    };
    if before.state == to || !before.state.can_become(to) {
        return Ok(());
    }
    let reason = (to == JobState::Failed).then(|| {
        let codes: Vec<&str> = state
            .alerts
            .iter()
            .map(|a: &Alert| a.code.as_str())
            .collect();
        if codes.is_empty() {
            "the printer reported a failure".to_owned()
        } else {
            codes.join(", ")
        }
    });
    // Completing it charges the printer's spool (the transition does).
    transition(tx, author, before, to, Some(printer), reason.as_deref()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(status: &str) -> PrinterState {
        PrinterState {
            status: status.to_owned(),
            ..PrinterState::default()
        }
    }

    fn statuses(steps: &[PrinterState]) -> Vec<&str> {
        steps.iter().map(|s| s.status.as_str()).collect()
    }

    #[test]
    fn steps_keep_the_order_a_printer_went_through() {
        let mut steps = Vec::new();
        for status in ["printing", "failed", "failed", "idle"] {
            steps = with_step(steps, "printing", &at(status));
        }
        assert_eq!(statuses(&steps), ["failed", "idle"]);
        // Back where it was announced is a step too: a pause and a resume both happened.
        let steps = with_step(
            with_step(Vec::new(), "printing", &at("paused")),
            "printing",
            &at("printing"),
        );
        assert_eq!(statuses(&steps), ["paused", "printing"]);
        let mut steps = Vec::new();
        for n in 0..20 {
            let status = if n % 2 == 0 { "printing" } else { "paused" };
            steps = with_step(steps, "idle", &at(status));
        }
        assert_eq!(steps.len(), MAX_STEPS);
        assert_eq!(steps.last().unwrap().status, "paused");
        // A step keeps its latest report: the alerts a failure came with.
        let mut failed = at("failed");
        failed.alerts.push(Alert {
            code: "HOTEND_FAULT".into(),
            severity: "error",
        });
        let steps = with_step(
            with_step(Vec::new(), "printing", &at("failed")),
            "printing",
            &failed,
        );
        assert_eq!(steps, [failed]);
    }
}
