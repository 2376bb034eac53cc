//! Logs and metrics set-up shared by every service.
//!
//! Logs go through `tracing`: pretty in a terminal, JSON lines when `FLEETDESK_LOG_FORMAT=json`
//! (what the container images set), filtered by `RUST_LOG` (default `info`). Metrics go through
//! the `metrics` facade into one Prometheus recorder per process, rendered by `/metrics`.

use std::collections::HashMap;
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
            let handle = builder.install_recorder().ok()?;
            // `install_recorder` leaves upkeep to the caller: without it every histogram sample
            // stays queued until the next scrape, so a process nobody scrapes grows by each
            // request it serves. A thread of its own, as this may first run outside a runtime.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            Some(handle)
        })
        .as_ref()
}

/// How often queued histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

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
/// time. Found by a hash of the name and labels, then checked against the stored name and
/// labels: neither step copies a label (building a key string and SipHashing it cost more than
/// the increment, four times per request in the gateway).
fn cached<H: Clone>(
    name: &'static str,
    labels: &[(&'static str, &str)],
    map: fn(&mut Handles) -> &mut HandleMap<H>,
    make: fn(&'static str, Vec<metrics::Label>) -> H,
) -> H {
    HANDLES.with(|h| {
        let mut h = h.borrow_mut();
        let hash = key_hash(&h.seed, name, labels);
        if let Some((key, handle)) = map(&mut h).get(&hash)
            && key.is(name, labels)
        {
            return handle.clone();
        }
        let _ = metrics_handle();
        let made = make(name, owned(labels));
        let map = map(&mut h);
        if map.len() >= HANDLES_MAX {
            map.clear();
        }
        // Two keys with one hash (never seen, but possible): the later one is kept, and the
        // other makes its handle again when next asked (the registry hands back the same
        // metric either way).
        let key = Key {
            name,
            labels: labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        };
        map.insert(hash, (key, made.clone()));
        made
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

/// The keys are hashes already.
type IdHash = std::hash::BuildHasherDefault<IdHasher>;

/// A thread's handles of one kind, by [`key_hash`].
type HandleMap<H> = HashMap<u64, (Key, H), IdHash>;

#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Default)]
struct Handles {
    seed: foldhash::fast::RandomState,
    counters: HandleMap<metrics::Counter>,
    histograms: HandleMap<metrics::Histogram>,
}

/// A handle's name and labels.
struct Key {
    name: &'static str,
    labels: Vec<(&'static str, String)>,
}

impl Key {
    fn is(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.name == name
            && self.labels.len() == labels.len()
            && self
                .labels
                .iter()
                .zip(labels)
                .all(|((k, v), (k2, v2))| k == k2 && v == v2)
    }
}

/// A hash of `name` and the label values: only a hint, as every hit is checked with
/// [`Key::is`], so the label names (fixed at each call site) and separators are left out.
fn key_hash(seed: &foldhash::fast::RandomState, name: &str, labels: &[(&str, &str)]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = seed.build_hasher();
    h.write(name.as_bytes());
    for (_, v) in labels {
        h.write(v.as_bytes());
    }
    h.finish()
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
        // Values that run together like another key's (the hash may well be the same) must
        // not find the other's handle.
        counter(
            "fleetdesk_test_total",
            &[("route", "/a2"), ("status", "00")],
        )
        .increment(7);
        counter(
            "fleetdesk_test_total",
            &[("route", "/a"), ("status", "200")],
        )
        .increment(0);
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
            text.contains("fleetdesk_test_total{route=\"/a2\",status=\"00\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("fleetdesk_test_seconds_count{route=\"/a\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn a_stored_key_matches_only_its_own_name_and_labels() {
        let key = Key {
            name: "m",
            labels: vec![("a", "1".into()), ("b", "2".into())],
        };
        assert!(key.is("m", &[("a", "1"), ("b", "2")]));
        assert!(!key.is("m", &[("a", "1")]));
        assert!(!key.is("m", &[("a", "1"), ("b", "23")]));
        assert!(!key.is("m", &[("a", "1"), ("c", "2")]));
        assert!(!key.is("mm", &[("a", "1"), ("b", "2")]));
        let seed = foldhash::fast::RandomState::default();
        assert_eq!(
            key_hash(&seed, "m", &[("a", "1"), ("b", "2")]),
            key_hash(&seed, "m", &[("a", "1"), ("b", "2")])
        );
    }
}
