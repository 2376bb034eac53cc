//! The values a ticket, product or company may hold, parsed at the edge.

use std::fmt;

/// Severity, `P0` (everything is down) to `P4` (cosmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Severity(u8);

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 5] = [
        Severity(0),
        Severity(1),
        Severity(2),
        Severity(3),
        Severity(4),
    ];
    /// What a ticket gets when nothing says otherwise.
    pub const DEFAULT: Severity = Severity(3);

    /// Parses `P0`..`P4`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.as_bytes() {
            [b'P', d @ b'0'..=b'4'] => Ok(Severity(d - b'0')),
            _ => Err("must be one of P0, P1, P2, P3, P4".into()),
        }
    }

    /// 0 for P0 … 4 for P4 (lower is more severe).
    pub fn rank(self) -> i32 {
        i32::from(self.0)
    }

    /// From a stored rank.
    pub fn from_rank(rank: i32) -> Self {
        Severity(u8::try_from(rank.clamp(0, 4)).unwrap_or(3))
    }

    /// `P0`..`P4`.
    pub fn as_str(self) -> &'static str {
        ["P0", "P1", "P2", "P3", "P4"][usize::from(self.0.min(4))]
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Defines a closed set of wire names.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Parses the wire name.
            pub fn parse(s: &str) -> Result<Self, String> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(format!("must be one of {}", [$($wire),+].join(", "))),
                }
            }

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }
    };
}

wire_enum!(
    /// What kind of work a ticket is.
    TicketType {
        Bug = "bug",
        Incident = "incident",
        Question = "question",
        FeatureRequest = "feature_request",
        Task = "task",
    }
);

wire_enum!(
    /// How a ticket arrived.
    Channel {
        Web = "web",
        Email = "email",
        Api = "api",
        Chat = "chat",
        Phone = "phone",
    }
);

wire_enum!(
    /// Who sees a comment.
    Visibility {
        Public = "public",
        Internal = "internal",
    }
);

fn trimmed(s: &str, min: usize, max: usize, what: &str) -> Result<String, String> {
    let t = s.trim();
    let n = t.chars().count();
    if n < min {
        return Err(if min == 1 {
            "must not be empty".into()
        } else {
            format!("must be at least {min} characters")
        });
    }
    if n > max {
        return Err(format!("{what} must be at most {max} characters"));
    }
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err("must not contain control characters".into());
    }
    Ok(t.to_owned())
}

/// A one-line text (title, name): 1..=`max` characters, no line breaks.
pub fn line(s: &str, max: usize) -> Result<String, String> {
    let t = trimmed(s, 1, max, "it")?;
    if t.contains(['\n', '\r']) {
        return Err("must be one line".into());
    }
    Ok(t)
}

/// A multi-line text (description, comment): 1..=`max` characters.
pub fn text(s: &str, max: usize) -> Result<String, String> {
    trimmed(s, 1, max, "it")
}

/// Optional free text that may be empty (notes, descriptions of products).
pub fn free_text(s: &str, max: usize) -> Result<String, String> {
    if s.trim().is_empty() {
        return Ok(String::new());
    }
    trimmed(s, 0, max, "it")
}

/// A product key: 2 to 10 upper-case letters or digits, starting with a letter (`PAY`).
pub fn product_key(s: &str) -> Result<String, String> {
    let ok = (2..=10).contains(&s.len())
        && s.as_bytes()[0].is_ascii_uppercase()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if ok {
        Ok(s.to_owned())
    } else {
        Err("must be 2 to 10 upper-case letters or digits, starting with a letter".into())
    }
}

/// Whether `s` looks like a ticket key (`PAY-42`) rather than an id.
pub fn is_ticket_key(s: &str) -> bool {
    match s.rsplit_once('-') {
        Some((key, number)) => {
            product_key(key).is_ok()
                && !number.is_empty()
                && number.len() <= 18
                && number.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// An email address, lower-cased: one `@`, a dotted domain, at most 254 characters.
pub fn email(s: &str) -> Result<String, String> {
    let e = s.trim().to_lowercase();
    let bad = || Err("must be an email address".to_string());
    if e.len() > 254 || e.contains(char::is_whitespace) {
        return bad();
    }
    match e.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && local.len() <= 64 && email_domain(domain).is_ok() =>
        {
            Ok(e)
        }
        _ => bad(),
    }
}

/// A DNS domain for email (`example.com`), lower-cased.
pub fn email_domain(s: &str) -> Result<String, String> {
    let d = s.trim().trim_start_matches('@').to_lowercase();
    let labels_ok = d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if d.len() <= 253 && d.contains('.') && labels_ok {
        Ok(d)
    } else {
        Err("must be a domain such as example.com".into())
    }
}

/// Tags: at most 20, each 1..=50 of letters, digits, `-`, `_`, `.`, `:`; lower-cased and
/// deduplicated, order kept.
pub fn tags(list: &[String]) -> Result<Vec<String>, String> {
    if list.len() > 20 {
        return Err("at most 20 tags".into());
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for t in list {
        let t = t.trim().to_lowercase();
        let ok = (1..=50).contains(&t.chars().count())
            && t.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if !ok {
            return Err(format!(
                "`{t}` is not a tag: 1 to 50 letters, digits, '-', '_', '.' or ':'"
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// A company identifier: 1..=64 letters, digits, `-`, `_`, `.`.
pub fn identifier(s: &str) -> Result<String, String> {
    let t = s.trim();
    let ok = (1..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(t.to_owned())
    } else {
        Err("must be 1 to 64 letters, digits, '-', '_' or '.'".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_parse_and_order() {
        assert_eq!(Severity::parse("P0").map(Severity::rank), Ok(0));
        assert!(Severity::parse("P5").is_err());
        assert!(Severity::parse("p1").is_err());
        assert!(Severity::parse("P0").unwrap() < Severity::parse("P3").unwrap());
        assert_eq!(Severity::from_rank(2).as_str(), "P2");
    }

    #[test]
    fn keys_and_ticket_keys() {
        assert!(product_key("PAY").is_ok());
        assert!(product_key("P").is_err());
        assert!(product_key("pay").is_err());
        assert!(product_key("1PAY").is_err());
        assert!(is_ticket_key("PAY-42"));
        assert!(is_ticket_key("WEB2-1"));
        assert!(!is_ticket_key("0193a6c4-7f7e-7c2b-9f9e-0123456789ab"));
        assert!(!is_ticket_key("PAY-"));
    }

    #[test]
    fn emails_domains_and_tags() {
        assert_eq!(email(" Ann@Example.COM ").as_deref(), Ok("ann@example.com"));
        assert!(email("ann@localhost").is_err());
        assert!(email("a b@example.com").is_err());
        assert_eq!(email_domain("@Acme.io").as_deref(), Ok("acme.io"));
        assert!(email_domain("-bad.io").is_err());
        assert_eq!(
            tags(&["Billing".into(), "billing".into(), "eu:west".into()]),
            Ok(vec!["billing".to_string(), "eu:west".to_string()])
        );
        assert!(tags(&["has space".into()]).is_err());
    }

    #[test]
    fn lines_refuse_breaks_and_control_characters() {
        assert!(line("a\nb", 10).is_err());
        assert!(line("  ", 10).is_err());
        assert!(line("abc\u{7}", 10).is_err());
        assert!(text("a\nb", 10).is_ok());
        assert!(line(&"x".repeat(11), 10).is_err());
    }
}
