//! The value types a credential field can have, and the rule each one checks.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A field's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    PlainText,
    Password,
    GenericSecret,
    LicenseKey,
    IpAddress,
    BitlockerKey,
    Url,
    Email,
    Hostname,
    Port,
}

/// Longest value of any type, in bytes.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

impl ValueType {
    /// Every value type, in the order `GET /credential-types/value-types` lists them.
    pub const ALL: [ValueType; 10] = [
        ValueType::PlainText,
        ValueType::Password,
        ValueType::GenericSecret,
        ValueType::LicenseKey,
        ValueType::IpAddress,
        ValueType::BitlockerKey,
        ValueType::Url,
        ValueType::Email,
        ValueType::Hostname,
        ValueType::Port,
    ];

    /// The wire name (`plain_text`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::PlainText => "plain_text",
            ValueType::Password => "password",
            ValueType::GenericSecret => "generic_secret",
            ValueType::LicenseKey => "license_key",
            ValueType::IpAddress => "ip_address",
            ValueType::BitlockerKey => "bitlocker_key",
            ValueType::Url => "url",
            ValueType::Email => "email",
            ValueType::Hostname => "hostname",
            ValueType::Port => "port",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// What a valid value looks like, for documentation and error messages.
    pub fn rule(self) -> &'static str {
        match self {
            ValueType::PlainText => {
                "any text without control characters other than tab and newline"
            }
            ValueType::Password | ValueType::GenericSecret => "any non-empty text",
            ValueType::LicenseKey => {
                "letters and digits in groups separated by hyphens (e.g. ABCDE-12345-FGHIJ)"
            }
            ValueType::IpAddress => "an IPv4 or IPv6 address",
            ValueType::BitlockerKey => {
                "48 digits in eight hyphen-separated groups of six, each group a multiple of 11 below 720896"
            }
            ValueType::Url => "an absolute http, https, ftp, ssh, rdp or vnc URL with a host",
            ValueType::Email => "an email address (local@domain.tld)",
            ValueType::Hostname => "a DNS host name (labels of letters, digits and hyphens)",
            ValueType::Port => "a port number from 1 to 65535",
        }
    }

    /// Whether `value` is valid for this type. Empty values are the caller's concern (a
    /// required field must have one).
    pub fn check(self, value: &str) -> Result<(), &'static str> {
        if value.len() > MAX_VALUE_BYTES {
            return Err("is longer than 16384 bytes");
        }
        let ok = match self {
            ValueType::PlainText => value
                .chars()
                .all(|c| !c.is_control() || c == '\t' || c == '\n' || c == '\r'),
            ValueType::Password | ValueType::GenericSecret => !value.is_empty(),
            ValueType::LicenseKey => license_key(value),
            ValueType::IpAddress => value.parse::<IpAddr>().is_ok(),
            ValueType::BitlockerKey => bitlocker_key(value),
            ValueType::Url => url(value),
            ValueType::Email => email(value),
            ValueType::Hostname => hostname(value),
            ValueType::Port => {
                matches!(value.parse::<u32>(), Ok(1..=65535)) && !value.starts_with('0')
            }
        };
        if ok { Ok(()) } else { Err(self.rule()) }
    }
}

fn license_key(v: &str) -> bool {
    (5..=200).contains(&v.len())
        && v.split('-')
            .all(|g| !g.is_empty() && g.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// BitLocker recovery passwords: eight groups of six digits; each group is a 16-bit block
/// times 11, so it divides by 11 and stays below 65536 × 11 = 720896.
fn bitlocker_key(v: &str) -> bool {
    let groups: Vec<&str> = v.split('-').collect();
    groups.len() == 8
        && groups.iter().all(|g| {
            g.len() == 6
                && g.bytes().all(|b| b.is_ascii_digit())
                && g.parse::<u32>().is_ok_and(|n| n % 11 == 0 && n < 720_896)
        })
}

fn hostname(v: &str) -> bool {
    let v = v.strip_suffix('.').unwrap_or(v);
    !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn email(v: &str) -> bool {
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    v.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '@')
        && domain.contains('.')
        && hostname(domain)
}

fn url(v: &str) -> bool {
    let Ok(u) = url::Url::parse(v) else {
        return false;
    };
    matches!(
        u.scheme(),
        "http" | "https" | "ftp" | "ftps" | "sftp" | "ssh" | "rdp" | "vnc"
    ) && u.host().is_some()
}

#[cfg(test)]
mod tests {
    use super::ValueType::*;
    use super::*;

    #[test]
    fn every_type_accepts_good_and_refuses_bad_examples() {
        let cases: &[(ValueType, &[&str], &[&str])] = &[
            (PlainText, &["hello", "two\nlines", ""], &["bell\u{7}"]),
            (Password, &["hunter2", " "], &[""]),
            (GenericSecret, &["s3cr3t"], &[""]),
            (
                LicenseKey,
                &["ABCDE-12345-FGHIJ", "XXXXX"],
                &["AB", "ABC--DEF", "ABC DEF", "ABCDE-"],
            ),
            (
                IpAddress,
                &["10.0.0.1", "::1", "2001:db8::8a2e:370:7334"],
                &["10.0.0.256", "10.0.0", "host", "1.2.3.4/24"],
            ),
            (
                BitlockerKey,
                &["000000-000011-720885-123453-654313-111111-222222-333333"],
                &[
                    "000000-000011-720885-123453-654313-111111-222222",
                    "000000-000011-720896-123453-654313-111111-222222-333333",
                    "000000-000012-720885-123453-654313-111111-222222-333333",
                    "000000-00011-720885-123453-654313-111111-222222-3333333",
                    "00000a-000011-720885-123453-654313-111111-222222-333333",
                ],
            ),
            (
                Url,
                &[
                    "https://portal.example.com/login",
                    "ssh://10.0.0.1:22",
                    "rdp://host",
                ],
                &[
                    "portal.example.com",
                    "javascript:alert(1)",
                    "https://",
                    "file:///etc/passwd",
                ],
            ),
            (
                Email,
                &["ops@example.com", "a.b+c@sub.example.co.uk"],
                &[
                    "ops",
                    "ops@",
                    "@example.com",
                    "ops@example",
                    "o ps@example.com",
                ],
            ),
            (
                Hostname,
                &["db-1.internal.example.com", "localhost", "fqdn.example."],
                &["-bad.example", "bad_host", "a..b", ""],
            ),
            (
                Port,
                &["1", "22", "65535"],
                &["0", "65536", "022", "-1", "http"],
            ),
        ];
        for (ty, good, bad) in cases {
            for v in *good {
                assert!(ty.check(v).is_ok(), "{} should accept {v:?}", ty.as_str());
            }
            for v in *bad {
                assert_eq!(
                    ty.check(v),
                    Err(ty.rule()),
                    "{} should refuse {v:?}",
                    ty.as_str()
                );
            }
        }
        assert!(PlainText.check(&"x".repeat(MAX_VALUE_BYTES + 1)).is_err());
    }

    #[test]
    fn names_round_trip() {
        for t in ValueType::ALL {
            assert_eq!(ValueType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(ValueType::parse("ssn"), None);
    }
}
