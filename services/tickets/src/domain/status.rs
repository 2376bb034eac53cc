//! The ticket workflow: statuses, the allowed transitions (one table), and what each status
//! does to the SLA clock.

use std::fmt;

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    New,
    Open,
    InProgress,
    /// Waiting on the customer.
    Pending,
    /// Waiting on a third party or a change.
    OnHold,
    Resolved,
    Closed,
}

/// What the SLA clock does while a ticket is in a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    Running,
    Paused,
    Stopped,
}

use Status::*;

/// Every status, in workflow order.
pub const ALL: [Status; 7] = [New, Open, InProgress, Pending, OnHold, Resolved, Closed];

/// The allowed moves: from → the statuses it may go to. `closed` is final except through
/// reopen (a separate permission, `ticket.reopen`), which goes to `open`.
const TRANSITIONS: &[(Status, &[Status])] = &[
    (New, &[Open, InProgress, Pending, OnHold, Resolved, Closed]),
    (Open, &[InProgress, Pending, OnHold, Resolved, Closed]),
    (InProgress, &[Open, Pending, OnHold, Resolved, Closed]),
    (Pending, &[Open, InProgress, OnHold, Resolved, Closed]),
    (OnHold, &[Open, InProgress, Pending, Resolved, Closed]),
    (Resolved, &[Open, Closed]),
    (Closed, &[]),
];

impl Status {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Result<Self, String> {
        ALL.iter()
            .copied()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "must be one of {}",
                    ALL.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            New => "new",
            Open => "open",
            InProgress => "in_progress",
            Pending => "pending",
            OnHold => "on_hold",
            Resolved => "resolved",
            Closed => "closed",
        }
    }

    /// The statuses a ticket may move to from this one (reopen aside).
    pub fn next(self) -> &'static [Status] {
        TRANSITIONS
            .iter()
            .find(|(from, _)| *from == self)
            .map(|(_, to)| *to)
            .unwrap_or(&[])
    }

    /// What the SLA clock does in this status.
    pub fn clock(self) -> Clock {
        match self {
            New | Open | InProgress => Clock::Running,
            Pending | OnHold => Clock::Paused,
            Resolved | Closed => Clock::Stopped,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a move is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    /// Already there.
    Same,
    /// Not in the table; carries the allowed next statuses.
    NotAllowed(Vec<Status>),
    /// `closed` → `open` needs `ticket.reopen`.
    NeedsReopen,
}

/// Checks a move. `may_reopen` says whether the caller holds `ticket.reopen`.
pub fn check(from: Status, to: Status, may_reopen: bool) -> Result<(), TransitionError> {
    if from == to {
        return Err(TransitionError::Same);
    }
    if from == Closed && to == Open {
        return if may_reopen {
            Ok(())
        } else {
            Err(TransitionError::NeedsReopen)
        };
    }
    if from.next().contains(&to) {
        Ok(())
    } else {
        Err(TransitionError::NotAllowed(from.next().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_row_and_closed_is_final() {
        for s in ALL {
            assert!(TRANSITIONS.iter().any(|(f, _)| *f == s), "{s}");
        }
        assert!(Closed.next().is_empty());
    }

    #[test]
    fn closed_reopens_only_with_the_permission() {
        assert_eq!(
            check(Closed, Open, false),
            Err(TransitionError::NeedsReopen)
        );
        assert_eq!(check(Closed, Open, true), Ok(()));
        assert!(matches!(
            check(Closed, InProgress, true),
            Err(TransitionError::NotAllowed(_))
        ));
    }

    #[test]
    fn resolved_goes_back_to_open_or_on_to_closed() {
        assert_eq!(check(Resolved, Open, false), Ok(()));
        assert_eq!(check(Resolved, Closed, false), Ok(()));
        assert_eq!(
            check(Resolved, Pending, false),
            Err(TransitionError::NotAllowed(vec![Open, Closed]))
        );
        assert_eq!(check(Open, Open, false), Err(TransitionError::Same));
        assert!(check(New, New, true).is_err());
    }

    #[test]
    fn clocks_follow_the_status() {
        assert_eq!(InProgress.clock(), Clock::Running);
        assert_eq!(OnHold.clock(), Clock::Paused);
        assert_eq!(Resolved.clock(), Clock::Stopped);
        assert_eq!(Status::parse("on_hold"), Ok(OnHold));
        assert!(Status::parse("done").is_err());
    }
}
