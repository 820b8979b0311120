//! The print queue's rules, free of I/O: the job state machine (SPEC §7) and what each bulk
//! queue operation asks of it.

use super::events::EventType;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A print job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Assigned,
    Printing,
    Paused,
    Completed,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Assigned,
        JobState::Printing,
        JobState::Paused,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Assigned => "assigned",
            JobState::Printing => "printing",
            JobState::Paused => "paused",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Finished: nothing happens to the job unless it is retried.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled
        )
    }

    /// `queued → assigned → printing ⇄ paused → completed | failed | cancelled`, and
    /// `failed | cancelled → queued` by retry. An assigned job can be handed back to the queue,
    /// and a job can be cancelled (or fail) from any state before it finishes.
    pub fn can_become(self, to: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, to),
            (Queued, Assigned)
                | (Queued, Cancelled)
                | (Assigned, Queued)
                | (Assigned, Printing)
                | (Assigned, Failed)
                | (Assigned, Cancelled)
                | (Printing, Paused)
                | (Printing, Completed)
                | (Printing, Failed)
                | (Printing, Cancelled)
                | (Paused, Printing)
                | (Paused, Completed)
                | (Paused, Failed)
                | (Paused, Cancelled)
                | (Failed, Queued)
                | (Cancelled, Queued)
        )
    }

    /// The domain event (SPEC §8) a move into this state emits, if any.
    pub fn event_on_entry(self, from: JobState) -> Option<EventType> {
        match (from, self) {
            (JobState::Assigned, JobState::Printing) => Some(EventType::JobStarted),
            (_, JobState::Completed) => Some(EventType::JobSucceeded),
            (_, JobState::Failed) => Some(EventType::JobFailed),
            (_, JobState::Cancelled) => Some(EventType::JobCancelled),
            _ => None,
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bulk operation on `{printJobIds}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Pause,
    Resume,
    Cancel,
    Retry,
    /// Removes finished jobs from the queue.
    Clear,
    MoveToQueueFront,
}

impl BulkAction {
    /// The state the action moves a job into from `from`, or `None` if it cannot apply there.
    /// Each applies only where its name says: pause a printing job, resume a paused one, retry
    /// a failed or cancelled one (the state machine allows more, such as an assigned job
    /// starting, which is the printer's to report). `Clear` and `MoveToQueueFront` keep the
    /// state; they only apply to finished and queued jobs.
    pub fn target(self, from: JobState) -> Option<JobState> {
        use JobState::*;
        let to = match (self, from) {
            (BulkAction::Pause, Printing) => Paused,
            (BulkAction::Resume, Paused) => Printing,
            (BulkAction::Cancel, _) if from.can_become(Cancelled) => Cancelled,
            (BulkAction::Retry, Failed | Cancelled) => Queued,
            (BulkAction::Clear, _) if from.is_terminal() => from,
            (BulkAction::MoveToQueueFront, Queued) => from,
            _ => return None,
        };
        Some(to)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BulkAction::Pause => "pause",
            BulkAction::Resume => "resume",
            BulkAction::Cancel => "cancel",
            BulkAction::Retry => "retry",
            BulkAction::Clear => "clear",
            BulkAction::MoveToQueueFront => "move-to-queue-front",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::JobState::*;
    use super::*;

    #[test]
    fn legal_transitions_are_exactly_the_documented_ones() {
        let legal = [
            (Queued, Assigned),
            (Queued, Cancelled),
            (Assigned, Queued),
            (Assigned, Printing),
            (Assigned, Failed),
            (Assigned, Cancelled),
            (Printing, Paused),
            (Printing, Completed),
            (Printing, Failed),
            (Printing, Cancelled),
            (Paused, Printing),
            (Paused, Completed),
            (Paused, Failed),
            (Paused, Cancelled),
            (Failed, Queued),
            (Cancelled, Queued),
        ];
        for from in JobState::ALL {
            for to in JobState::ALL {
                assert_eq!(
                    from.can_become(to),
                    legal.contains(&(from, to)),
                    "{from} → {to}"
                );
            }
        }
    }

    #[test]
    fn completed_is_final_and_no_state_becomes_itself() {
        assert!(JobState::ALL.iter().all(|s| !Completed.can_become(*s)));
        assert!(JobState::ALL.iter().all(|s| !s.can_become(*s)));
    }

    #[test]
    fn bulk_actions_follow_the_machine() {
        assert_eq!(BulkAction::Pause.target(Printing), Some(Paused));
        assert_eq!(BulkAction::Pause.target(Queued), None);
        assert_eq!(BulkAction::Resume.target(Paused), Some(Printing));
        assert_eq!(BulkAction::Resume.target(Printing), None);
        assert_eq!(BulkAction::Cancel.target(Assigned), Some(Cancelled));
        assert_eq!(BulkAction::Cancel.target(Completed), None);
        assert_eq!(BulkAction::Retry.target(Failed), Some(Queued));
        assert_eq!(BulkAction::Retry.target(Completed), None);
        // Only where the name says, though the state machine allows more.
        assert_eq!(BulkAction::Resume.target(Assigned), None);
        assert_eq!(BulkAction::Retry.target(Assigned), None);
        assert_eq!(BulkAction::Pause.target(Assigned), None);
        assert_eq!(BulkAction::Clear.target(Completed), Some(Completed));
        assert_eq!(BulkAction::Clear.target(Printing), None);
        assert_eq!(BulkAction::MoveToQueueFront.target(Queued), Some(Queued));
        assert_eq!(BulkAction::MoveToQueueFront.target(Assigned), None);
    }

    #[test]
    fn events_on_entry() {
        assert_eq!(
            Printing.event_on_entry(Assigned),
            Some(EventType::JobStarted)
        );
        assert_eq!(Printing.event_on_entry(Paused), None);
        assert_eq!(
            Completed.event_on_entry(Printing),
            Some(EventType::JobSucceeded)
        );
        assert_eq!(Failed.event_on_entry(Assigned), Some(EventType::JobFailed));
        assert_eq!(
            Cancelled.event_on_entry(Queued),
            Some(EventType::JobCancelled)
        );
        assert_eq!(Queued.event_on_entry(Failed), None);
    }

    #[test]
    fn names_round_trip() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobState::parse("done"), None);
    }
}
