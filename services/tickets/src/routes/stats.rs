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
use crate::store::tickets::{self, StatsRow};

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

fn median(mut v: Vec<i64>) -> Durations {
    v.sort_unstable();
    let count = v.len();
    let median_seconds = match count {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2),
    };
    Durations {
        count,
        median_seconds,
    }
}

fn seconds(from: NaiveDateTime, to: Option<NaiveDateTime>) -> Option<i64> {
    to.map(|t| (t - from).num_seconds().max(0))
}

/// Folds ticket rows into the figures.
pub fn compute(rows: &[StatsRow]) -> TicketStats {
    let mut s = TicketStats {
        total: rows.len(),
        by_status: BTreeMap::new(),
        by_severity: BTreeMap::new(),
        by_type: BTreeMap::new(),
        by_channel: BTreeMap::new(),
        first_response: median(Vec::new()),
        resolution: median(Vec::new()),
        sla_compliance: Compliance {
            decided: 0,
            breached: 0,
            rate: None,
        },
        triage_override_rate: None,
    };
    let (mut fr, mut res) = (Vec::new(), Vec::new());
    let mut overridden = 0usize;
    for (status, rank, typ, channel, over, created, first, resolved, fr_breach, res_breach) in rows
    {
        *s.by_status.entry(status.clone()).or_default() += 1;
        *s.by_severity
            .entry(Severity::from_rank(*rank).to_string())
            .or_default() += 1;
        *s.by_type.entry(typ.clone()).or_default() += 1;
        *s.by_channel.entry(channel.clone()).or_default() += 1;
        overridden += usize::from(*over != 0);
        fr.extend(seconds(*created, *first));
        res.extend(seconds(*created, *resolved));
        let breached = fr_breach.is_some() || res_breach.is_some();
        if breached || resolved.is_some() {
            s.sla_compliance.decided += 1;
            s.sla_compliance.breached += usize::from(breached);
        }
    }
    s.first_response = median(fr);
    s.resolution = median(res);
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
    let tenant = caller.tenant_id.clone();
    let rows = state
        .db
        .run(move |conn| {
            tickets::for_stats(conn, &tenant, q.product_id.as_deref(), from, to)
                .map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(compute(&rows)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(min: i64) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap()
            + chrono::Duration::minutes(min)
    }

    #[test]
    fn figures_add_up() {
        let row = |status: &str,
                   over,
                   first: Option<i64>,
                   resolved: Option<i64>,
                   breach: bool|
         -> StatsRow {
            (
                status.into(),
                2,
                "bug".into(),
                "web".into(),
                over,
                at(0),
                first.map(at),
                resolved.map(at),
                breach.then(|| at(60)),
                None,
            )
        };
        let s = compute(&[
            row("resolved", 0, Some(10), Some(100), false),
            row("resolved", 1, Some(30), Some(200), true),
            row("open", 0, None, None, true),
            row("new", 0, None, None, false),
        ]);
        assert_eq!(s.total, 4);
        assert_eq!(s.by_status["resolved"], 2);
        assert_eq!(s.by_severity["P2"], 4);
        assert_eq!(
            s.first_response,
            Durations {
                count: 2,
                median_seconds: Some(20 * 60)
            }
        );
        assert_eq!(s.resolution.median_seconds, Some(150 * 60));
        assert_eq!(s.sla_compliance.decided, 3);
        assert_eq!(s.sla_compliance.breached, 2);
        assert_eq!(s.triage_override_rate, Some(0.25));
        assert_eq!(compute(&[]).triage_override_rate, None);
    }
}
