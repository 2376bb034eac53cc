//! The gateway's configuration: upstreams, the route table, public routes, limits.

use std::net::IpAddr;
use std::time::Duration;

use fleetdesk_web::config::{ConfigError, Settings};

use crate::limits::{DEFAULT_POLICIES, Policy};
use url::Url;

/// A service behind the gateway.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `identity`, `tickets`, …
    pub name: String,
    /// Base URL, e.g. `http://identity:8081` (k8s) or `http://127.0.0.1:8081`.
    pub base: Url,
    /// Longest wait for the upstream's response headers (bodies stream without a limit, so
    /// server-sent events pass).
    pub timeout: Duration,
}

/// A public route: no token needed. `path` ends in `*` to match a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicRoute {
    /// `None` for any method.
    pub method: Option<String>,
    /// Exact path, or a prefix when it ends in `*`.
    pub path: String,
}

impl PublicRoute {
    /// Parses `POST /api/v1/auth/login` or `/health*`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (method, path) = match text.split_once(' ') {
            Some((m, p)) => (Some(m.trim().to_ascii_uppercase()), p.trim()),
            None => (None, text),
        };
        if !path.starts_with('/') || path.contains(' ') {
            return None;
        }
        if method
            .as_deref()
            .is_some_and(|m| m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return None;
        }
        Some(Self {
            method,
            path: path.to_owned(),
        })
    }

    /// Whether a request matches.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return false;
        }
        match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == self.path,
        }
    }
}

/// Routes that need no token by default: sign-in and its recovery, the JWKS, health and docs,
/// and GitHub's webhooks (signed by GitHub, checked by tickets).
pub const DEFAULT_PUBLIC: &[&str] = &[
    "POST /api/v1/auth/login",
    "POST /api/v1/auth/register",
    "POST /api/v1/auth/refresh",
    "POST /api/v1/auth/password-reset/request",
    "POST /api/v1/auth/password-reset/confirm",
    "POST /api/v1/auth/service/token",
    "POST /api/v1/auth/api-key/exchange",
    "GET /.well-known/jwks.json",
    "POST /api/v1/integrations/github/webhook",
];

/// The route table of DESIGN.md §1: the first segment after `/api/v1/` names the service.
pub const DEFAULT_ROUTES: &[(&str, &str)] = &[
    ("auth", "identity"),
    ("users", "identity"),
    ("roles", "identity"),
    ("permissions", "identity"),
    ("api-keys", "identity"),
    ("tenants", "identity"),
    ("audit", "identity"),
    ("tickets", "tickets"),
    ("products", "tickets"),
    ("companies", "tickets"),
    ("integrations", "tickets"),
    ("knowledge", "knowledge"),
    ("change-requests", "changes"),
    ("credentials", "vault"),
    ("credential-types", "vault"),
    ("vault", "vault"),
    ("notifications", "notify"),
    ("templates", "notify"),
    ("webhooks", "notify"),
];

/// The services and their default loopback ports.
pub const SERVICES: &[(&str, u16)] = &[
    ("identity", 8081),
    ("tickets", 8082),
    ("knowledge", 8083),
    ("changes", 8084),
    ("vault", 8085),
    ("notify", 8086),
];

/// The gateway's settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `FLEETDESK_GATEWAY_LISTEN`, default `127.0.0.1:8080`.
    pub listen: String,
    /// HTTP workers (`FLEETDESK_HTTP_WORKERS`, default one per core).
    pub workers: usize,
    /// The services deployed (`FLEETDESK_GATEWAY_SERVICES`, default all six), each with
    /// `FLEETDESK_GATEWAY_UPSTREAM_<SERVICE>` (URL) and
    /// `FLEETDESK_GATEWAY_TIMEOUT_<SERVICE>_SECONDS` (default `FLEETDESK_GATEWAY_TIMEOUT_SECONDS`,
    /// 30).
    pub upstreams: Vec<UpstreamConfig>,
    /// First path segment under `/api/v1/` → upstream name. `FLEETDESK_GATEWAY_ROUTES` adds or
    /// replaces entries: `segment=service,…`.
    pub routes: Vec<(String, String)>,
    /// `FLEETDESK_GATEWAY_PUBLIC_ROUTES`: `METHOD /path` or `/prefix*`, comma-separated; replaces
    /// the default list.
    pub public: Vec<PublicRoute>,
    /// Largest request body (`FLEETDESK_GATEWAY_MAX_BODY_BYTES`, default 10 MiB): 413 beyond.
    pub max_body: u64,
    /// Largest request target and largest sum of header lines, each
    /// (`FLEETDESK_GATEWAY_MAX_HEADER_BYTES`, default 16 KiB): 414 and 431 beyond.
    pub max_header: usize,
    /// `iss` and `aud` tokens must carry (`FLEETDESK_JWT_ISSUER`, `FLEETDESK_JWT_AUDIENCE`).
    pub issuer: String,
    /// See `issuer`.
    pub audience: String,
    /// Shortest pause between two JWKS fetches caused by unknown `kid`s
    /// (`FLEETDESK_GATEWAY_JWKS_MIN_REFRESH_SECONDS`, default 5).
    pub jwks_min_refresh: Duration,
    /// Periodic JWKS refresh (`FLEETDESK_GATEWAY_JWKS_REFRESH_SECONDS`, default 300).
    pub jwks_refresh: Duration,
    /// Exchanged API-key tokens are reused until this long before they expire
    /// (`FLEETDESK_GATEWAY_API_KEY_MARGIN_SECONDS`, default 30).
    pub api_key_margin: Duration,
    /// How long a client connection may go without a request before it is closed: a client
    /// slow to send a request's head, or a keep-alive connection left idle, is closed after
    /// between one and two of these (`FLEETDESK_GATEWAY_IDLE_TIMEOUT_SECONDS`, default 5). A
    /// request being served keeps its connection open however long it takes.
    pub idle_timeout: Duration,
    /// How long a client may take to make room for more of its answer
    /// (`FLEETDESK_GATEWAY_SEND_TIMEOUT_SECONDS`, default 60, as nginx's `send_timeout`): one
    /// that stops reading is closed, however long its answer or stream.
    pub send_timeout: Duration,
    /// Consecutive failures that open an upstream's circuit
    /// (`FLEETDESK_GATEWAY_BREAKER_FAILURES`, default 5).
    pub breaker_failures: u32,
    /// How long an open circuit answers 503 before letting a trial request through
    /// (`FLEETDESK_GATEWAY_BREAKER_OPEN_SECONDS`, default 10).
    pub breaker_open: Duration,
    /// Browser origins allowed to call the API (`FLEETDESK_GATEWAY_CORS_ORIGINS`, comma-
    /// separated, e.g. `https://app.example.com`; default none).
    pub cors_origins: Vec<String>,
    /// Rate-limit policies (`FLEETDESK_GATEWAY_RATE_LIMITS`, `;`-separated; `off` for none).
    pub rate_limits: Vec<Policy>,
    /// Redis for limits shared by every replica (`FLEETDESK_GATEWAY_REDIS_URL`); unset: in
    /// memory.
    pub redis_url: Option<String>,
    /// Proxies in front of the gateway (an ingress controller, a load balancer) whose
    /// `X-Forwarded-For/-Proto/-Host` are believed (`FLEETDESK_GATEWAY_TRUSTED_PROXIES`,
    /// comma-separated addresses or CIDR networks; default none: the gateway is the edge).
    pub trusted_proxies: Vec<Network>,
}

/// An address or a CIDR network, e.g. `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    bits: u8,
}

impl Network {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address, or `v6/n`.
    pub fn parse(text: &str) -> Option<Self> {
        let (ip, bits) = match text.trim().split_once('/') {
            Some((ip, bits)) => (ip.parse::<IpAddr>().ok()?, Some(bits.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Self { base: ip, bits })
    }

    /// Whether `ip` is in the network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let prefix = |a: u128, b: u128, width: u32| {
            let shift = width - u32::from(self.bits);
            shift >= width || (a >> shift) == (b >> shift)
        };
        match (self.base, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                prefix(u128::from(u32::from(n)), u128::from(u32::from(a)), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix(u128::from(n), u128::from(a), 128),
            _ => false,
        }
    }
}

fn url_of(var: &str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| ConfigError::new(var, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(var, "must be an http:// or https:// URL"));
    }
    Ok(url)
}

impl GatewayConfig {
    /// Reads and checks every setting.
    pub fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        let secs =
            |name: &str, default: u64, min: u64, max: u64| -> Result<Duration, ConfigError> {
                let v: u64 = s.parse_or(name, default)?;
                if !(min..=max).contains(&v) {
                    return Err(ConfigError::new(
                        name,
                        format!("must be between {min} and {max}"),
                    ));
                }
                Ok(Duration::from_secs(v))
            };
        let default_timeout = secs("FLEETDESK_GATEWAY_TIMEOUT_SECONDS", 30, 1, 3600)?;
        let enabled: Vec<String> = match s.get("FLEETDESK_GATEWAY_SERVICES") {
            None => SERVICES.iter().map(|(n, _)| (*n).to_owned()).collect(),
            Some(list) => {
                let names: Vec<String> = list
                    .split(',')
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .collect();
                if names.is_empty() || names.iter().any(|n| !SERVICES.iter().any(|(s, _)| s == n)) {
                    return Err(ConfigError::new(
                        "FLEETDESK_GATEWAY_SERVICES",
                        "a comma-separated list of identity, tickets, knowledge, changes, vault, notify",
                    ));
                }
                names
            }
        };
        let mut upstreams = Vec::new();
        for (name, port) in SERVICES
            .iter()
            .filter(|(n, _)| enabled.iter().any(|e| e == n))
        {
            let var = format!("FLEETDESK_GATEWAY_UPSTREAM_{}", name.to_ascii_uppercase());
            let default = format!("http://127.0.0.1:{port}");
            let base = url_of(&var, s.get(&var).unwrap_or(&default))?;
            // Forwarding speaks plain HTTP/1.1 with keep-alive, like nginx's `proxy_pass
            // http://`; traffic between pods is the mesh's to encrypt.
            if base.scheme() != "http" {
                return Err(ConfigError::new(
                    &var,
                    "must be an http:// URL (the gateway speaks plain HTTP/1.1 to the services)",
                ));
            }
            let timeout_var = format!(
                "FLEETDESK_GATEWAY_TIMEOUT_{}_SECONDS",
                name.to_ascii_uppercase()
            );
            let timeout = match s.get(&timeout_var) {
                Some(_) => secs(&timeout_var, 30, 1, 3600)?,
                None => default_timeout,
            };
            upstreams.push(UpstreamConfig {
                name: (*name).to_owned(),
                base,
                timeout,
            });
        }
        let mut routes: Vec<(String, String)> = DEFAULT_ROUTES
            .iter()
            .map(|(p, u)| ((*p).to_owned(), (*u).to_owned()))
            .collect();
        if let Some(extra) = s.get("FLEETDESK_GATEWAY_ROUTES") {
            for entry in extra.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let bad = || {
                    ConfigError::new(
                        "FLEETDESK_GATEWAY_ROUTES",
                        format!("`{entry}`: expected segment=service with a known service"),
                    )
                };
                let (segment, service) = entry.split_once('=').ok_or_else(bad)?;
                let (segment, service) = (segment.trim(), service.trim());
                if segment.is_empty()
                    || segment.contains('/')
                    || !upstreams.iter().any(|u| u.name == service)
                {
                    return Err(bad());
                }
                routes.retain(|(p, _)| p != segment);
                routes.push((segment.to_owned(), service.to_owned()));
            }
        }
        // Paths of services not deployed answer 404 rather than waiting on nothing.
        routes.retain(|(_, service)| upstreams.iter().any(|u| &u.name == service));
        let public = match s.get("FLEETDESK_GATEWAY_PUBLIC_ROUTES") {
            None => DEFAULT_PUBLIC
                .iter()
                .filter_map(|p| PublicRoute::parse(p))
                .collect(),
            Some(raw) => raw
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| {
                    PublicRoute::parse(p).ok_or_else(|| {
                        ConfigError::new(
                            "FLEETDESK_GATEWAY_PUBLIC_ROUTES",
                            format!("`{}`: expected `METHOD /path` or `/prefix*`", p.trim()),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let max_body: u64 = s.parse_or("FLEETDESK_GATEWAY_MAX_BODY_BYTES", 10 * 1024 * 1024)?;
        if !(1024..=1024 * 1024 * 1024).contains(&max_body) {
            return Err(ConfigError::new(
                "FLEETDESK_GATEWAY_MAX_BODY_BYTES",
                "must be between 1024 and 1073741824",
            ));
        }
        let max_header: usize = s.parse_or("FLEETDESK_GATEWAY_MAX_HEADER_BYTES", 16 * 1024)?;
        if !(1024..=64 * 1024).contains(&max_header) {
            return Err(ConfigError::new(
                "FLEETDESK_GATEWAY_MAX_HEADER_BYTES",
                "must be between 1024 and 65536",
            ));
        }
        let breaker_failures: u32 = s.parse_or("FLEETDESK_GATEWAY_BREAKER_FAILURES", 5)?;
        if breaker_failures == 0 {
            return Err(ConfigError::new(
                "FLEETDESK_GATEWAY_BREAKER_FAILURES",
                "must be at least 1",
            ));
        }
        let rate_limits = match s.get("FLEETDESK_GATEWAY_RATE_LIMITS").map(str::trim) {
            Some("off") => Vec::new(),
            other => Policy::parse_all(other.unwrap_or(DEFAULT_POLICIES))
                .map_err(|e| ConfigError::new("FLEETDESK_GATEWAY_RATE_LIMITS", e))?,
        };
        let redis_url = match s
            .get("FLEETDESK_GATEWAY_REDIS_URL")
            .filter(|u| !u.is_empty())
        {
            Some(u) if u.starts_with("redis://") || u.starts_with("rediss://") => {
                Some(u.to_owned())
            }
            Some(_) => {
                return Err(ConfigError::new(
                    "FLEETDESK_GATEWAY_REDIS_URL",
                    "must start with redis:// or rediss://",
                ));
            }
            None => None,
        };
        let cors_origins: Vec<String> = s
            .get("FLEETDESK_GATEWAY_CORS_ORIGINS")
            .unwrap_or("")
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        for o in &cors_origins {
            let ok = o == "*"
                || Url::parse(o).is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/"
                });
            if !ok {
                return Err(ConfigError::new(
                    "FLEETDESK_GATEWAY_CORS_ORIGINS",
                    format!("`{o}` is not an origin like https://app.example.com"),
                ));
            }
        }
        let trusted_proxies = s
            .get("FLEETDESK_GATEWAY_TRUSTED_PROXIES")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                Network::parse(n).ok_or_else(|| {
                    ConfigError::new(
                        "FLEETDESK_GATEWAY_TRUSTED_PROXIES",
                        format!("`{n}` is not an address or a network like 10.0.0.0/8"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let workers = s.parse_or(
            "FLEETDESK_HTTP_WORKERS",
            std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2),
        )?;
        Ok(Self {
            listen: s
                .get("FLEETDESK_GATEWAY_LISTEN")
                .unwrap_or("127.0.0.1:8080")
                .to_owned(),
            workers: workers.max(1),
            upstreams,
            routes,
            public,
            max_body,
            max_header,
            issuer: s
                .get("FLEETDESK_JWT_ISSUER")
                .unwrap_or("fleetdesk")
                .to_owned(),
            audience: s
                .get("FLEETDESK_JWT_AUDIENCE")
                .unwrap_or("fleetdesk-api")
                .to_owned(),
            jwks_min_refresh: secs("FLEETDESK_GATEWAY_JWKS_MIN_REFRESH_SECONDS", 5, 1, 3600)?,
            jwks_refresh: secs("FLEETDESK_GATEWAY_JWKS_REFRESH_SECONDS", 300, 10, 86_400)?,
            api_key_margin: secs("FLEETDESK_GATEWAY_API_KEY_MARGIN_SECONDS", 30, 0, 3600)?,
            breaker_failures,
            breaker_open: secs("FLEETDESK_GATEWAY_BREAKER_OPEN_SECONDS", 10, 1, 3600)?,
            idle_timeout: secs("FLEETDESK_GATEWAY_IDLE_TIMEOUT_SECONDS", 5, 1, 3600)?,
            send_timeout: secs("FLEETDESK_GATEWAY_SEND_TIMEOUT_SECONDS", 60, 1, 3600)?,
            rate_limits,
            redis_url,
            cors_origins,
            trusted_proxies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_networks_parse_and_match() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:10.9.9.9".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(!n.contains("fd00::1".parse().unwrap()));
        let one = Network::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6 = Network::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0/8", "::/129", "1.2.3.4/x"] {
            assert!(Network::parse(bad).is_none(), "{bad}");
        }
        let s = Settings::from_pairs([("FLEETDESK_GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8, bogus")]);
        let e = GatewayConfig::from_settings(&s).unwrap_err().to_string();
        assert!(e.contains("FLEETDESK_GATEWAY_TRUSTED_PROXIES"), "{e}");
    }

    #[test]
    fn public_routes_parse_and_match() {
        let login = PublicRoute::parse("POST /api/v1/auth/login").unwrap();
        assert!(login.matches("POST", "/api/v1/auth/login"));
        assert!(!login.matches("GET", "/api/v1/auth/login"));
        assert!(!login.matches("POST", "/api/v1/auth/login/x"));
        let health = PublicRoute::parse("/health*").unwrap();
        assert!(health.matches("GET", "/health/ready"));
        assert!(PublicRoute::parse("nope").is_none());
        assert!(PublicRoute::parse("post1 /x").is_none());
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let s = Settings::from_pairs([("FLEETDESK_GATEWAY_UPSTREAM_TICKETS", "ftp://x")]);
        let e = GatewayConfig::from_settings(&s).unwrap_err();
        assert!(
            e.to_string().contains("FLEETDESK_GATEWAY_UPSTREAM_TICKETS"),
            "{e}"
        );
        let s = Settings::from_pairs([(
            "FLEETDESK_GATEWAY_UPSTREAM_VAULT",
            "https://vault.internal:8085",
        )]);
        let e = GatewayConfig::from_settings(&s).unwrap_err();
        assert!(
            e.to_string().contains("FLEETDESK_GATEWAY_UPSTREAM_VAULT")
                && e.to_string().contains("http://"),
            "{e}"
        );
        let s = Settings::from_pairs([("FLEETDESK_GATEWAY_ROUTES", "things=nowhere")]);
        let e = GatewayConfig::from_settings(&s).unwrap_err();
        assert!(e.to_string().contains("FLEETDESK_GATEWAY_ROUTES"), "{e}");
        let s = Settings::from_pairs([("FLEETDESK_GATEWAY_ROUTES", "things=tickets")]);
        let c = GatewayConfig::from_settings(&s).unwrap();
        assert!(c.routes.contains(&("things".into(), "tickets".into())));
    }
}
