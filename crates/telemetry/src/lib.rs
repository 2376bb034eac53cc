//! Logs and metrics set-up shared by every service.
//!
//! Logs go through `tracing`: pretty in a terminal, JSON lines when `FLEETDESK_LOG_FORMAT=json`
//! (what the container images set), filtered by `RUST_LOG` (default `info`). Metrics go through
//! the `metrics` facade into one Prometheus recorder per process, rendered by `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for collectors.
    Json,
}

impl LogFormat {
    /// Reads `FLEETDESK_LOG_FORMAT` (`json` or `pretty`; default `pretty`).
    pub fn from_env() -> Self {
        match std::env::var("FLEETDESK_LOG_FORMAT").as_deref() {
            Ok("json") => LogFormat::Json,
            _ => LogFormat::Pretty,
        }
    }
}

/// Installs the global tracing subscriber once; later calls do nothing.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets in seconds, from 1 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's Prometheus recorder, installed on first use.
///
/// `None` only if another recorder was installed first (then `/metrics` says so).
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    METRICS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .ok()?;
            builder.install_recorder().ok()
        })
        .as_ref()
}

/// The current metrics in Prometheus text format.
pub fn render_metrics() -> String {
    metrics_handle()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// The counter named `name` with these labels. Handles are kept per thread once made: the
/// `metrics` macros build, hash and look up an owned key on every call, which costs more than
/// the increment itself on a path taken for every request.
pub fn counter(name: &'static str, labels: &[(&'static str, &str)]) -> metrics::Counter {
    cached(
        name,
        labels,
        |h| &mut h.counters,
        |n, l| metrics::counter!(n, l),
    )
}

/// The histogram named `name` with these labels, kept per thread like [`counter`]'s.
pub fn histogram(name: &'static str, labels: &[(&'static str, &str)]) -> metrics::Histogram {
    cached(
        name,
        labels,
        |h| &mut h.histograms,
        |n, l| metrics::histogram!(n, l),
    )
}

/// The handle for `name` and `labels` from this thread's `map`, made by `make` the first
/// time.
fn cached<H: Clone>(
    name: &'static str,
    labels: &[(&'static str, &str)],
    map: fn(&mut Handles) -> &mut std::collections::HashMap<String, H>,
    make: fn(&'static str, Vec<metrics::Label>) -> H,
) -> H {
    HANDLES.with(|h| {
        let mut h = h.borrow_mut();
        let mut key = std::mem::take(&mut h.key);
        write_key(&mut key, name, labels);
        let found = map(&mut h).get(key.as_str()).cloned();
        let handle = found.unwrap_or_else(|| {
            let _ = metrics_handle();
            let made = make(name, owned(labels));
            let map = map(&mut h);
            if map.len() >= HANDLES_MAX {
                map.clear();
            }
            map.insert(key.clone(), made.clone());
            made
        });
        h.key = key;
        handle
    })
}

fn owned(labels: &[(&'static str, &str)]) -> Vec<metrics::Label> {
    labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, (*v).to_owned()))
        .collect()
}

/// Most handles a thread keeps; past it the cache starts again (labels are bounded — routes,
/// statuses — so this only guards against a label that is not).
const HANDLES_MAX: usize = 4096;

#[derive(Default)]
struct Handles {
    key: String,
    counters: std::collections::HashMap<String, metrics::Counter>,
    histograms: std::collections::HashMap<String, metrics::Histogram>,
}

/// `name` and every label as one string, in a buffer reused between calls.
fn write_key(key: &mut String, name: &str, labels: &[(&str, &str)]) {
    key.clear();
    key.push_str(name);
    for (k, v) in labels {
        key.push('\u{1f}');
        key.push_str(k);
        key.push('=');
        key.push_str(v);
    }
}

thread_local! {
    static HANDLES: std::cell::RefCell<Handles> = std::cell::RefCell::new(Handles::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_handles_count_into_the_one_registered_metric() {
        counter(
            "fleetdesk_test_total",
            &[("route", "/a"), ("status", "200")],
        )
        .increment(2);
        let other_thread = std::thread::spawn(|| {
            counter(
                "fleetdesk_test_total",
                &[("route", "/a"), ("status", "200")],
            )
            .increment(3);
        });
        other_thread.join().unwrap();
        counter(
            "fleetdesk_test_total",
            &[("route", "/a"), ("status", "500")],
        )
        .increment(1);
        histogram("fleetdesk_test_seconds", &[("route", "/a")]).record(0.002);
        let text = render_metrics();
        assert!(
            text.contains("fleetdesk_test_total{route=\"/a\",status=\"200\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("fleetdesk_test_total{route=\"/a\",status=\"500\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("fleetdesk_test_seconds_count{route=\"/a\"} 1"),
            "{text}"
        );
    }
}
