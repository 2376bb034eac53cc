//! `GET /tickets/stats`: counts, response and resolution times, SLA compliance and how often
//! triage was overridden.

use std::collections::BTreeMap;

use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use chrono::{DateTime, NaiveDateTime, Utc};
use fleetdesk_auth::permissions::perm;
use fleetdesk_web::{ApiError, FieldErrors, Query, Require};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::domain::fields::Severity;
use crate::store::tickets::{self, StatsGroup, StatsScope};

pub(super) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(ticket_stats);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct StatsQuery {
    pub product_id: Option<String>,
    /// RFC 3339: tickets created at or after.
    pub from: Option<String>,
    /// RFC 3339: tickets created before.
    pub to: Option<String>,
}

/// A duration figure.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Durations {
    /// Tickets that have one.
    pub count: usize,
    /// Median in seconds; `null` without any.
    pub median_seconds: Option<i64>,
}

/// SLA compliance.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Compliance {
    /// Tickets whose SLA outcome is known: resolved, or breached.
    pub decided: usize,
    /// Of those, how many breached a target.
    pub breached: usize,
    /// `(decided - breached) / decided`; `null` when nothing is decided.
    pub rate: Option<f64>,
}

/// The figures.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketStats {
    pub total: usize,
    pub by_status: BTreeMap<String, usize>,
    pub by_severity: BTreeMap<String, usize>,
    pub by_type: BTreeMap<String, usize>,
    pub by_channel: BTreeMap<String, usize>,
    /// Creation to first public agent reply.
    pub first_response: Durations,
    /// Creation to resolution.
    pub resolution: Durations,
    pub sla_compliance: Compliance,
    /// Share of tickets whose triaged severity an agent overrode; `null` without tickets.
    pub triage_override_rate: Option<f64>,
}

fn durations(count: i64, median_seconds: Option<i64>) -> Durations {
    Durations {
        count: usize::try_from(count).unwrap_or_default(),
        median_seconds,
    }
}

/// Adds the groups' counts up into the figures; the medians come from the store.
pub fn compute(
    groups: &[StatsGroup],
    first_response_median: Option<i64>,
    resolution_median: Option<i64>,
) -> TicketStats {
    let n = |v: i64| usize::try_from(v).unwrap_or_default();
    let mut s = TicketStats {
        total: 0,
        by_status: BTreeMap::new(),
        by_severity: BTreeMap::new(),
        by_type: BTreeMap::new(),
        by_channel: BTreeMap::new(),
        first_response: durations(0, None),
        resolution: durations(0, None),
        sla_compliance: Compliance {
            decided: 0,
            breached: 0,
            rate: None,
        },
        triage_override_rate: None,
    };
    let (mut responded, mut resolved, mut overridden) = (0, 0, 0);
    for g in groups {
        let count = n(g.tickets);
        s.total += count;
        *s.by_status.entry(g.status.clone()).or_default() += count;
        *s.by_severity
            .entry(Severity::from_rank(g.severity_rank).to_string())
            .or_default() += count;
        *s.by_type.entry(g.ticket_type.clone()).or_default() += count;
        *s.by_channel.entry(g.channel.clone()).or_default() += count;
        overridden += n(g.overridden);
        responded += g.responded;
        resolved += g.resolved;
        s.sla_compliance.decided += n(g.decided);
        s.sla_compliance.breached += n(g.breached);
    }
    s.first_response = durations(responded, first_response_median);
    s.resolution = durations(resolved, resolution_median);
    let c = &mut s.sla_compliance;
    c.rate = (c.decided > 0).then(|| (c.decided - c.breached) as f64 / c.decided as f64);
    s.triage_override_rate = (s.total > 0).then(|| overridden as f64 / s.total as f64);
    s
}

fn time(e: &mut FieldErrors, name: &str, v: &Option<String>) -> Option<NaiveDateTime> {
    let v = v.as_deref()?;
    e.check(
        name,
        DateTime::parse_from_rfc3339(v)
            .map(|t| t.with_timezone(&Utc).naive_utc())
            .map_err(|_| "must be an RFC 3339 time such as 2026-11-23T10:00:00Z"),
    )
}

/// Ticket statistics for a period (by creation time), optionally of one product.
#[utoipa::path(tag = "tickets", params(StatsQuery), responses((status = 200, body = TicketStats)), security(("bearer" = ["ticket.stats.read"])))]
#[get("/tickets/stats")]
async fn ticket_stats(
    state: Data<AppState>,
    caller: Require<perm::TicketStatsRead>,
    query: Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let mut e = FieldErrors::default();
    let from = time(&mut e, "from", &q.from);
    let to = time(&mut e, "to", &q.to);
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        e.push("to", "must be after from");
    }
    e.finish()?;
    let scope = StatsScope {
        tenant_id: caller.tenant_id.clone(),
        product_id: q.product_id,
        from,
        to,
    };
    // Counts in SQL, grouped; then each median from the middle of its sorted times, all in
    // one snapshot so the medians' positions match the counts. Not a turn among the reads
    // (`Db::read`): at a million tickets this takes seconds, and a few at once would hold
    // every list and search back for as long.
    let stats = state
        .db
        .run(move |conn| {
            fleetdesk_store::snapshot(conn, |conn| {
                tickets::prepare_for_stats(conn)?;
                let groups = tickets::stats_groups(conn, &scope)?;
                let responded = groups.iter().map(|g| g.responded).sum();
                let resolved = groups.iter().map(|g| g.resolved).sum();
                let first = tickets::median_seconds(conn, &scope, false, responded)?;
                let resolution = tickets::median_seconds(conn, &scope, true, resolved)?;
                Ok::<_, diesel::result::Error>(compute(&groups, first, resolution))
            })
            .map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(status: &str, rank: i32, tickets: i64) -> StatsGroup {
        StatsGroup {
            status: status.into(),
            severity_rank: rank,
            ticket_type: "bug".into(),
            channel: "web".into(),
            tickets,
            overridden: 0,
            responded: 0,
            resolved: 0,
            decided: 0,
            breached: 0,
        }
    }

    #[test]
    fn figures_add_up() {
        let resolved = StatsGroup {
            overridden: 1,
            responded: 2,
            resolved: 2,
            decided: 3,
            breached: 2,
            ..group("resolved", 2, 2)
        };
        let s = compute(
            &[resolved, group("open", 2, 1), group("new", 0, 1)],
            Some(1200),
            Some(9000),
        );
        assert_eq!(s.total, 4);
        assert_eq!(s.by_status["resolved"], 2);
        assert_eq!(s.by_severity["P2"], 3);
        assert_eq!(s.by_severity["P0"], 1);
        assert_eq!(s.by_type["bug"], 4);
        assert_eq!(
            s.first_response,
            Durations {
                count: 2,
                median_seconds: Some(1200)
            }
        );
        assert_eq!(s.resolution.count, 2);
        assert_eq!(s.sla_compliance.decided, 3);
        assert_eq!(s.sla_compliance.breached, 2);
        assert_eq!(s.sla_compliance.rate, Some(1.0 / 3.0));
        assert_eq!(s.triage_override_rate, Some(0.25));
        let none = compute(&[], None, None);
        assert_eq!((none.total, none.triage_override_rate), (0, None));
        assert_eq!(none.sla_compliance.rate, None);
    }
}
