//! Prometheus metrics: one registry for the process, recorded only when the running
//! gateway asked for metrics (`[admin] metrics`, on by default), and served in
//! Prometheus's text format by `/metrics`. Every label takes its value from a short
//! list (a surface, a method, a status class, an outcome) or from the configuration (a
//! backend's name): no user, account, token or key is ever a label.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

static ON: AtomicBool = AtomicBool::new(false);
static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Whether metrics are recorded; set by a gateway as it starts.
pub fn enable(on: bool) {
    ON.store(on, Ordering::Relaxed);
    if on {
        LazyLock::force(&METRICS);
    }
}

pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

fn get() -> Option<&'static Metrics> {
    enabled().then(|| &*METRICS)
}

/// Where a request was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    V1Auth,
    Keystone,
    Admin,
    /// Token validation for clusters (`/token/…`).
    Validation,
    StorageLocal,
    StorageProxy,
    Pages,
    /// `/info`, `/healthcheck`, `/readyz`, `/metrics`.
    Operations,
    /// Refused before it named anything.
    Unrouted,
}

impl Surface {
    fn index(self) -> usize {
        self as usize
    }

    fn as_str(self) -> &'static str {
        match self {
            Surface::V1Auth => "v1_auth",
            Surface::Keystone => "keystone",
            Surface::Admin => "admin",
            Surface::Validation => "token_validation",
            Surface::StorageLocal => "storage_local",
            Surface::StorageProxy => "storage_proxy",
            Surface::Pages => "pages",
            Surface::Operations => "operations",
            Surface::Unrouted => "unrouted",
        }
    }
}

const METHOD_LABELS: [&str; METHODS] = [
    "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "COPY", "other",
];
const CLASS_LABELS: [&str; CLASSES] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// A method's place in `METHOD_LABELS`; any other method is `other`.
fn method_index(method: &http::Method) -> usize {
    match *method {
        http::Method::GET => 0,
        http::Method::HEAD => 1,
        http::Method::PUT => 2,
        http::Method::POST => 3,
        http::Method::DELETE => 4,
        http::Method::OPTIONS => 5,
        _ if method.as_str() == "COPY" => 6,
        _ => 7,
    }
}

fn class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// How a login ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    Ok,
    BadKey,
    UnknownUser,
    Throttled,
}

/// How a TLS handshake ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    Ok,
    Failed,
    TimedOut,
    /// The handshake completed, and the client certificate was refused.
    CertificateRefused,
}

/// Why an upstream request failed without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    Timeout,
    Unreachable,
    Garbage,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    surface: &'static str,
    method: &'static str,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SurfaceLabel {
    surface: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    surface: &'static str,
    fault: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    listener: &'static str,
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabel {
    backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendClassLabels {
    backend: String,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendOutcomeLabels {
    backend: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    level: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabel {
    policy: &'static str,
}

type Histograms<L> = Family<L, Latency>;

/// The upper bounds of latency buckets, from a millisecond to a minute, in seconds.
const BOUNDS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A latency histogram that takes an observation with a few atomic additions and no lock
/// (the crate's own takes a mutex per observation, which requests on every core contend
/// for); encoded as any histogram.
#[derive(Debug, Clone, Default)]
pub struct Latency(std::sync::Arc<LatencyInner>);

#[derive(Debug, Default)]
pub struct LatencyInner {
    /// Observations per bucket (not cumulative); the last is above every bound.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    /// The sum of the observations, in nanoseconds.
    sum_ns: AtomicU64,
}

impl Latency {
    fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let i = BOUNDS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BOUNDS.len());
        self.0.buckets[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.0.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

impl prometheus_client::metrics::TypedMetric for Latency {
    const TYPE: prometheus_client::metrics::MetricType =
        prometheus_client::metrics::MetricType::Histogram;
}

impl prometheus_client::encoding::EncodeMetric for Latency {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let counts: Vec<u64> = self
            .0
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let buckets: Vec<(f64, u64)> = BOUNDS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(counts.iter().copied())
            .collect();
        let sum = Duration::from_nanos(self.0.sum_ns.load(Ordering::Relaxed)).as_secs_f64();
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            sum,
            counts.iter().sum(),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

/// Metrics of a label set from a short list, looked up once: the hot path reads an
/// atomic, and hashes no labels.
struct Handles<M, const N: usize>([std::sync::OnceLock<M>; N]);

impl<M, const N: usize> Handles<M, N> {
    const fn new() -> Self {
        Handles([const { std::sync::OnceLock::new() }; N])
    }

    fn get(&self, i: usize, make: impl FnOnce() -> M) -> Option<&M> {
        Some(self.0.get(i)?.get_or_init(make))
    }
}

const SURFACES: usize = 9;
const METHODS: usize = 8;
const CLASSES: usize = 5;

/// The handles of the metrics every request moves.
struct Hot {
    requests: Handles<Counter, { SURFACES * METHODS * CLASSES }>,
    duration: Handles<Latency, SURFACES>,
    errors: Handles<Counter, { SURFACES * 3 }>,
    store: Handles<Latency, { 3 * METHODS }>,
    outcomes: Handles<Counter, 16>,
}

static HOT: Hot = Hot {
    requests: Handles::new(),
    duration: Handles::new(),
    errors: Handles::new(),
    store: Handles::new(),
    outcomes: Handles::new(),
};

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Histograms<SurfaceLabel>,
    errors: Family<FaultLabels, Counter>,
    received: Family<ListenerLabel, Counter>,
    sent: Family<ListenerLabel, Counter>,
    logins: Family<OutcomeLabel, Counter>,
    validations: Family<OutcomeLabel, Counter>,
    credential_cache: Family<OutcomeLabel, Counter>,
    upstream_requests: Family<BackendClassLabels, Counter>,
    upstream_errors: Family<BackendOutcomeLabels, Counter>,
    upstream_duration: Histograms<BackendLabel>,
    upstream_logins: Family<BackendOutcomeLabels, Counter>,
    connections: Family<ConnectionLabels, Gauge>,
    handshakes: Family<OutcomeLabel, Counter>,
    certificate_expiry: Family<ListenerLabel, Gauge>,
    store_duration: Histograms<OperationLabels>,
    readiness: Family<OutcomeLabel, Counter>,
    store_objects: Family<PolicyLabel, Gauge>,
    store_bytes: Family<PolicyLabel, Gauge>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("swiftgate");
        let m = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            duration: Family::default(),
            errors: Family::default(),
            received: Family::default(),
            sent: Family::default(),
            logins: Family::default(),
            validations: Family::default(),
            credential_cache: Family::default(),
            upstream_requests: Family::default(),
            upstream_errors: Family::default(),
            upstream_duration: Family::default(),
            upstream_logins: Family::default(),
            connections: Family::default(),
            handshakes: Family::default(),
            certificate_expiry: Family::default(),
            store_duration: Family::default(),
            readiness: Family::default(),
            store_objects: Family::default(),
            store_bytes: Family::default(),
        };
        registry.register(
            "build",
            "The running version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "requests",
            "Requests answered, by surface, method and status class",
            m.requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time from a request's head to its answer's head, by surface",
            Unit::Seconds,
            m.duration.clone(),
        );
        registry.register(
            "request_errors",
            "Failed requests by surface and by who was at fault: client, upstream or internal",
            m.errors.clone(),
        );
        registry.register_with_unit(
            "received",
            "Bytes received on client connections, by listener (plain or tls)",
            Unit::Bytes,
            m.received.clone(),
        );
        registry.register_with_unit(
            "sent",
            "Bytes sent on client connections, by listener (plain or tls)",
            Unit::Bytes,
            m.sent.clone(),
        );
        registry.register(
            "logins",
            "Key checks of logins, by outcome: ok, bad_key, unknown_user, throttled",
            m.logins.clone(),
        );
        registry.register(
            "token_validations",
            "Tokens checked, by outcome: valid, invalid",
            m.validations.clone(),
        );
        registry.register(
            "credential_cache",
            "Key checks answered from the credential cache (hit) or by argon2 (miss)",
            m.credential_cache.clone(),
        );
        registry.register(
            "upstream_requests",
            "Requests to upstream backends that were answered, by backend and status class",
            m.upstream_requests.clone(),
        );
        registry.register(
            "upstream_errors",
            "Requests to upstream backends that got no answer, by backend and outcome: \
             timeout, unreachable, garbage",
            m.upstream_errors.clone(),
        );
        registry.register_with_unit(
            "upstream_request_duration",
            "Time from sending a request upstream to its answer's head, by backend",
            Unit::Seconds,
            m.upstream_duration.clone(),
        );
        registry.register(
            "upstream_logins",
            "Sessions the gateway opened or renewed upstream, by backend and outcome: ok, failed",
            m.upstream_logins.clone(),
        );
        registry.register(
            "open_connections",
            "Client connections open, by listener (plain or tls) and protocol (http1, h2, \
             or unknown before a first request)",
            m.connections.clone(),
        );
        registry.register(
            "tls_handshakes",
            "TLS handshakes, by outcome: ok, failed, timed_out, certificate_refused",
            m.handshakes.clone(),
        );
        registry.register_with_unit(
            "certificate_expiry_timestamp",
            "When the certificate of the TLS listeners expires, in seconds since 1970 (only \
             with TLS listeners)",
            Unit::Seconds,
            m.certificate_expiry.clone(),
        );
        registry.register_with_unit(
            "store_operation_duration",
            "Time the embedded object store took for an operation, by level (account, \
             container, object) and method",
            Unit::Seconds,
            m.store_duration.clone(),
        );
        registry.register(
            "readiness_checks",
            "Readiness checks run (one serves every probe for a second), by outcome: \
             ready, unready",
            m.readiness.clone(),
        );
        registry.register(
            "store_objects",
            "Objects in the embedded store, by storage policy",
            m.store_objects.clone(),
        );
        registry.register_with_unit(
            "store",
            "Bytes of objects in the embedded store, by storage policy",
            Unit::Bytes,
            m.store_bytes.clone(),
        );
        Metrics { registry, ..m }
    }
}

/// The metrics in Prometheus's text format; empty when none are recorded.
pub fn encode() -> String {
    let mut out = String::new();
    if let Some(m) = get() {
        // writing to a String does not fail
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry);
    }
    out
}

/// A request answered.
pub fn request(
    surface: Surface,
    method: &http::Method,
    status: u16,
    fault: Option<&'static str>,
    took: Duration,
) {
    let Some(m) = get() else { return };
    let (s, mi, ci) = (surface.index(), method_index(method), class_index(status));
    let labels = || RequestLabels {
        surface: surface.as_str(),
        method: METHOD_LABELS[mi],
        class: CLASS_LABELS[ci],
    };
    if let Some(c) = HOT.requests.get((s * METHODS + mi) * CLASSES + ci, || {
        m.requests.get_or_create_owned(&labels())
    }) {
        c.inc();
    }
    let surface_label = || SurfaceLabel {
        surface: surface.as_str(),
    };
    if let Some(h) = HOT
        .duration
        .get(s, || m.duration.get_or_create_owned(&surface_label()))
    {
        h.observe(took);
    }
    if let Some(fault) = fault {
        let f = match fault {
            "client" => 0,
            "upstream" => 1,
            _ => 2,
        };
        let labels = || FaultLabels {
            surface: surface.as_str(),
            fault: ["client", "upstream", "internal"][f],
        };
        if let Some(c) = HOT
            .errors
            .get(s * 3 + f, || m.errors.get_or_create_owned(&labels()))
        {
            c.inc();
        }
    }
}

/// A counter of `family` whose one label is `outcome`, looked up once (`slot` is its
/// own among every such counter).
fn outcome(
    slot: usize,
    family: impl FnOnce(&'static Metrics) -> &'static Family<OutcomeLabel, Counter>,
    outcome: &'static str,
) {
    let Some(m) = get() else { return };
    if let Some(c) = HOT.outcomes.get(slot, || {
        family(m).get_or_create_owned(&OutcomeLabel { outcome })
    }) {
        c.inc();
    }
}

/// Counters of a connection's bytes, taken once when it opens.
#[derive(Clone)]
pub struct Traffic {
    received: Counter,
    sent: Counter,
}

impl Traffic {
    pub fn of(tls: bool) -> Option<Traffic> {
        let m = get()?;
        let l = ListenerLabel {
            listener: listener(tls),
        };
        Some(Traffic {
            received: m.received.get_or_create_owned(&l),
            sent: m.sent.get_or_create_owned(&l),
        })
    }

    pub fn received(&self, n: usize) {
        self.received.inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    pub fn sent(&self, n: usize) {
        self.sent.inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }
}

fn listener(tls: bool) -> &'static str {
    if tls { "tls" } else { "plain" }
}

/// A connection counted as open until dropped; its protocol is known at its first
/// request.
pub struct OpenConnection {
    tls: bool,
    protocol: std::sync::OnceLock<&'static str>,
}

impl OpenConnection {
    pub fn open(tls: bool) -> Option<OpenConnection> {
        let m = get()?;
        gauge(m, tls, "unknown").inc();
        Some(OpenConnection {
            tls,
            protocol: std::sync::OnceLock::new(),
        })
    }

    /// Notes the protocol of the connection's requests.
    pub fn speaks(&self, version: http::Version) {
        if self.protocol.get().is_some() {
            return;
        }
        let protocol = if version == http::Version::HTTP_2 {
            "h2"
        } else {
            "http1"
        };
        if self.protocol.set(protocol).is_ok() {
            let m = &*METRICS;
            gauge(m, self.tls, "unknown").dec();
            gauge(m, self.tls, protocol).inc();
        }
    }
}

fn gauge(m: &Metrics, tls: bool, protocol: &'static str) -> Gauge {
    m.connections.get_or_create_owned(&ConnectionLabels {
        listener: listener(tls),
        protocol,
    })
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let protocol = self.protocol.get().copied().unwrap_or("unknown");
        gauge(&METRICS, self.tls, protocol).dec();
    }
}

pub fn login(login: Login) {
    let (slot, label) = match login {
        Login::Ok => (0, "ok"),
        Login::BadKey => (1, "bad_key"),
        Login::UnknownUser => (2, "unknown_user"),
        Login::Throttled => (3, "throttled"),
    };
    outcome(slot, |m| &m.logins, label);
}

pub fn token_validation(valid: bool) {
    let (slot, label) = if valid { (4, "valid") } else { (5, "invalid") };
    outcome(slot, |m| &m.validations, label);
}

pub fn credential_cache(hit: bool) {
    let (slot, label) = if hit { (6, "hit") } else { (7, "miss") };
    outcome(slot, |m| &m.credential_cache, label);
}

/// An upstream request answered with `status` after `took`.
pub fn upstream_answered(backend: &str, status: u16, took: Duration) {
    let Some(m) = get() else { return };
    m.upstream_requests
        .get_or_create(&BackendClassLabels {
            backend: backend.to_owned(),
            class: CLASS_LABELS[class_index(status)],
        })
        .inc();
    m.upstream_duration
        .get_or_create(&BackendLabel {
            backend: backend.to_owned(),
        })
        .observe(took);
}

/// An upstream request that got no answer.
pub fn upstream_failed(backend: &str, error: UpstreamError) {
    let Some(m) = get() else { return };
    let outcome = match error {
        UpstreamError::Timeout => "timeout",
        UpstreamError::Unreachable => "unreachable",
        UpstreamError::Garbage => "garbage",
    };
    m.upstream_errors
        .get_or_create(&BackendOutcomeLabels {
            backend: backend.to_owned(),
            outcome,
        })
        .inc();
}

/// A session opened or renewed upstream.
pub fn upstream_login(backend: &str, ok: bool) {
    let Some(m) = get() else { return };
    m.upstream_logins
        .get_or_create(&BackendOutcomeLabels {
            backend: backend.to_owned(),
            outcome: if ok { "ok" } else { "failed" },
        })
        .inc();
}

pub fn tls_handshake(outcome: Handshake) {
    let Some(m) = get() else { return };
    let outcome = match outcome {
        Handshake::Ok => "ok",
        Handshake::Failed => "failed",
        Handshake::TimedOut => "timed_out",
        Handshake::CertificateRefused => "certificate_refused",
    };
    m.handshakes.get_or_create(&OutcomeLabel { outcome }).inc();
}

/// The expiry of the certificate the TLS listeners now present.
pub fn certificate_expires(unix_seconds: i64) {
    let Some(m) = get() else { return };
    m.certificate_expiry
        .get_or_create(&ListenerLabel { listener: "tls" })
        .set(unix_seconds);
}

/// An operation of the embedded object store: `level` is account, container or object.
pub fn store_operation(level: &'static str, method: &http::Method, took: Duration) {
    let Some(m) = get() else { return };
    let l = match level {
        "account" => 0,
        "container" => 1,
        _ => 2,
    };
    let mi = method_index(method);
    let labels = || OperationLabels {
        level: ["account", "container", "object"][l],
        method: METHOD_LABELS[mi],
    };
    if let Some(h) = HOT.store.get(l * METHODS + mi, || {
        m.store_duration.get_or_create_owned(&labels())
    }) {
        h.observe(took);
    }
}

/// A readiness check run.
pub fn readiness_checked(ready: bool) {
    let Some(m) = get() else { return };
    let outcome = if ready { "ready" } else { "unready" };
    m.readiness.get_or_create(&OutcomeLabel { outcome }).inc();
}

/// What the embedded store holds, read when metrics are served.
pub fn store_totals(policy: &'static str, objects: u64, bytes: u64) {
    let Some(m) = get() else { return };
    let p = PolicyLabel { policy };
    m.store_objects
        .get_or_create(&p)
        .set(i64::try_from(objects).unwrap_or(i64::MAX));
    m.store_bytes
        .get_or_create(&p)
        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        let method = |m: &[u8]| METHOD_LABELS[method_index(&http::Method::from_bytes(m).unwrap())];
        assert_eq!(method(b"BREW"), "other");
        assert_eq!(method(b"COPY"), "COPY");
        assert_eq!(method(b"GET"), "GET");
        assert_eq!(CLASS_LABELS[class_index(204)], "2xx");
        assert_eq!(CLASS_LABELS[class_index(599)], "5xx");
        assert_eq!(CLASS_LABELS[class_index(999)], "5xx");
        assert_eq!(Surface::Unrouted.index(), SURFACES - 1);
    }

    #[test]
    fn latency_buckets_hold_each_observation_once() {
        let h = Latency::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_secs(100));
        let counts: Vec<u64> =
            h.0.buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect();
        assert_eq!(counts.iter().sum::<u64>(), 3);
        assert_eq!(counts[0], 1);
        assert_eq!(counts[4], 1);
        assert_eq!(counts[BOUNDS.len()], 1);
        assert_eq!(h.0.sum_ns.load(Ordering::Relaxed), 100_020_500_000);
    }
}
