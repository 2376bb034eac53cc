//! SLA policies and the SLA clock of a ticket.
//!
//! One clock per ticket counts the time the ticket spent in running statuses (`new`, `open`,
//! `in_progress`); paused statuses (`pending`, `on_hold`) stop it without losing what it
//! counted, and `resolved`/`closed` stop it. Both targets — first response and resolution —
//! are measured on that clock, so a due time is "when the clock will have run for the
//! target", which moves whenever the clock pauses or the severity (hence the target) changes.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::fields::Severity;
use super::status::Clock;

/// The targets for one severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Targets {
    /// Minutes of running clock until the first public agent reply is due.
    pub first_response_minutes: i64,
    /// Minutes of running clock until the ticket must be resolved.
    pub resolution_minutes: i64,
    /// Whether a breach escalates the ticket to the product's lead.
    #[serde(default)]
    pub escalate_on_breach: bool,
}

/// A product's SLA policy: targets per severity (`P0`..`P4`). A severity without targets
/// has no SLA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Policy(pub BTreeMap<String, Targets>);

/// At most a year of running clock.
const MAX_MINUTES: i64 = 525_600;

impl Policy {
    /// What a product gets unless it says otherwise.
    pub fn default_policy() -> Self {
        let rows = [
            ("P0", 15, 240, true),
            ("P1", 60, 480, true),
            ("P2", 240, 1_440, false),
            ("P3", 480, 4_320, false),
            ("P4", 1_440, 10_080, false),
        ];
        Policy(
            rows.into_iter()
                .map(|(s, f, r, e)| {
                    (
                        s.to_owned(),
                        Targets {
                            first_response_minutes: f,
                            resolution_minutes: r,
                            escalate_on_breach: e,
                        },
                    )
                })
                .collect(),
        )
    }

    /// Checks every entry; the messages name the severity.
    pub fn validate(&self) -> Result<(), String> {
        for (sev, t) in &self.0 {
            Severity::parse(sev).map_err(|_| format!("`{sev}` is not a severity (P0 to P4)"))?;
            for (name, v) in [
                ("firstResponseMinutes", t.first_response_minutes),
                ("resolutionMinutes", t.resolution_minutes),
            ] {
                if !(1..=MAX_MINUTES).contains(&v) {
                    return Err(format!("{sev}.{name} must be between 1 and {MAX_MINUTES}"));
                }
            }
            if t.first_response_minutes > t.resolution_minutes {
                return Err(format!(
                    "{sev}.firstResponseMinutes must not exceed resolutionMinutes"
                ));
            }
        }
        Ok(())
    }

    /// The targets for a severity, if the policy has any.
    pub fn targets(&self, severity: Severity) -> Option<Targets> {
        self.0.get(severity.as_str()).copied()
    }
}

/// The clock's stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlaClock {
    /// When the current running stretch began; `None` unless running.
    pub running_since: Option<NaiveDateTime>,
    /// Running seconds counted before `running_since`.
    pub elapsed_seconds: i64,
    /// When the current pause began; `None` unless paused.
    pub paused_since: Option<NaiveDateTime>,
    /// Paused seconds counted before `paused_since`.
    pub paused_seconds: i64,
}

/// A ledger entry's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Start,
    Pause,
    Resume,
    Stop,
}

impl Mark {
    /// The ledger's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Start => "start",
            Mark::Pause => "pause",
            Mark::Resume => "resume",
            Mark::Stop => "stop",
        }
    }
}

fn seconds(from: NaiveDateTime, to: NaiveDateTime) -> i64 {
    (to - from).num_seconds().max(0)
}

impl SlaClock {
    /// A clock started at `now`.
    pub fn started(now: NaiveDateTime) -> Self {
        SlaClock {
            running_since: Some(now),
            ..Default::default()
        }
    }

    /// What the clock is doing.
    pub fn state(&self) -> Clock {
        if self.running_since.is_some() {
            Clock::Running
        } else if self.paused_since.is_some() {
            Clock::Paused
        } else {
            Clock::Stopped
        }
    }

    /// Running seconds at `now`.
    pub fn elapsed_at(&self, now: NaiveDateTime) -> i64 {
        self.elapsed_seconds + self.running_since.map_or(0, |s| seconds(s, now))
    }

    /// Paused seconds at `now`.
    pub fn paused_at(&self, now: NaiveDateTime) -> i64 {
        self.paused_seconds + self.paused_since.map_or(0, |s| seconds(s, now))
    }

    /// Moves the clock to what `to` asks at `now`; the mark for the ledger, if it moved.
    pub fn apply(&mut self, to: Clock, now: NaiveDateTime) -> Option<Mark> {
        let from = self.state();
        if from == to {
            return None;
        }
        // Close the current stretch.
        if let Some(since) = self.running_since.take() {
            self.elapsed_seconds += seconds(since, now);
        }
        if let Some(since) = self.paused_since.take() {
            self.paused_seconds += seconds(since, now);
        }
        match to {
            Clock::Running => self.running_since = Some(now),
            Clock::Paused => self.paused_since = Some(now),
            Clock::Stopped => {}
        }
        Some(match (from, to) {
            (Clock::Paused, Clock::Running) => Mark::Resume,
            (Clock::Stopped, Clock::Running) => Mark::Start,
            (_, Clock::Paused) => Mark::Pause,
            (_, Clock::Stopped) => Mark::Stop,
            (Clock::Running, Clock::Running) => Mark::Resume, // unreachable: from == to
        })
    }

    /// When the clock will have run `minutes`, if it is running now; `None` while paused or
    /// stopped (the due time is not fixed until it runs again).
    pub fn due(&self, minutes: i64) -> Option<NaiveDateTime> {
        let since = self.running_since?;
        Some(since + Duration::seconds(minutes * 60 - self.elapsed_seconds))
    }
}

/// The due times of a ticket's targets, given what is already done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dues {
    pub first_response: Option<NaiveDateTime>,
    pub resolution: Option<NaiveDateTime>,
    /// The earliest target still open and not breached, for the breach scheduler.
    pub next: Option<NaiveDateTime>,
}

/// What a ticket's SLA state is made of, besides its clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub responded: bool,
    pub first_response_breached: bool,
    pub resolution_breached: bool,
}

/// Due times for `targets` on `clock`.
pub fn dues(clock: &SlaClock, targets: Option<Targets>, progress: Progress) -> Dues {
    let Some(t) = targets else {
        return Dues::default();
    };
    let first_response = (!progress.responded)
        .then(|| clock.due(t.first_response_minutes))
        .flatten();
    let resolution = clock.due(t.resolution_minutes);
    let open = [
        (!progress.first_response_breached)
            .then_some(first_response)
            .flatten(),
        (!progress.resolution_breached)
            .then_some(resolution)
            .flatten(),
    ];
    Dues {
        first_response,
        resolution,
        next: open.into_iter().flatten().min(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn t(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 23)
            .and_then(|d| d.and_hms_opt(h, m, 0))
            .unwrap()
    }

    const P2: Targets = Targets {
        first_response_minutes: 60,
        resolution_minutes: 240,
        escalate_on_breach: false,
    };

    #[test]
    fn a_pause_moves_the_due_times_by_its_length() {
        let mut c = SlaClock::started(t(9, 0));
        assert_eq!(c.due(60), Some(t(10, 0)));
        assert_eq!(c.apply(Clock::Paused, t(9, 30)), Some(Mark::Pause));
        assert_eq!(c.due(60), None);
        assert_eq!(c.elapsed_at(t(11, 0)), 30 * 60);
        assert_eq!(c.apply(Clock::Running, t(11, 0)), Some(Mark::Resume));
        assert_eq!(c.paused_seconds, 90 * 60);
        assert_eq!(c.due(60), Some(t(11, 30)));
        assert_eq!(c.apply(Clock::Running, t(11, 5)), None);
    }

    #[test]
    fn stopping_keeps_the_count_and_a_restart_continues_it() {
        let mut c = SlaClock::started(t(9, 0));
        assert_eq!(c.apply(Clock::Stopped, t(10, 0)), Some(Mark::Stop));
        assert_eq!(c.elapsed_at(t(12, 0)), 3600);
        assert_eq!(c.apply(Clock::Running, t(12, 0)), Some(Mark::Start));
        assert_eq!(c.due(240), Some(t(15, 0)));
    }

    #[test]
    fn dues_skip_what_is_done_or_breached() {
        let c = SlaClock::started(t(9, 0));
        let d = dues(&c, Some(P2), Progress::default());
        assert_eq!(d.first_response, Some(t(10, 0)));
        assert_eq!(d.next, Some(t(10, 0)));
        let d = dues(
            &c,
            Some(P2),
            Progress {
                responded: true,
                ..Default::default()
            },
        );
        assert_eq!((d.first_response, d.next), (None, Some(t(13, 0))));
        let d = dues(
            &c,
            Some(P2),
            Progress {
                first_response_breached: true,
                ..Default::default()
            },
        );
        assert_eq!(d.next, Some(t(13, 0)));
        assert_eq!(dues(&c, None, Progress::default()), Dues::default());
    }

    #[test]
    fn policies_are_checked() {
        assert!(Policy::default_policy().validate().is_ok());
        let mut p = Policy::default_policy();
        p.0.insert("P9".into(), P2);
        assert!(p.validate().unwrap_err().contains("P9"));
        let mut p = Policy::default_policy();
        p.0.insert(
            "P1".into(),
            Targets {
                first_response_minutes: 500,
                resolution_minutes: 100,
                escalate_on_breach: false,
            },
        );
        assert!(p.validate().is_err());
    }
}
