//! Rule-based triage: severity, type and confidence from the words of a ticket, with the
//! reasons (which rules matched). Default rules ship here; a tenant may replace them per
//! product. A model's answer, when one is configured, is checked here too.

use serde::{Deserialize, Serialize};

use super::fields::{Severity, TicketType};

/// One rule: if any of `keywords` (and, when given, any of `andKeywords`) occurs in the
/// title or description as whole words, it proposes a severity and/or a type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Unique within the set: lower-case letters, digits, `-`, `_`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Words or phrases, any of which must occur (case-insensitive, whole words).
    pub keywords: Vec<String>,
    /// If not empty, one of these must occur as well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub and_keywords: Vec<String>,
    /// `P0`..`P4`: the most severe of all matching rules wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The first matching rule with a type decides it.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub ticket_type: Option<String>,
}

/// An ordered set of rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

/// Where a triage result came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// `rules` or `model`.
    pub source: String,
    /// The model's name, for `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `default-1`, `product-<n>` (the product's rule version) or the model's version.
    pub version: String,
    /// Why the model was not used, when it was configured but failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

/// The result of triage, kept with the ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Triage {
    pub severity: String,
    #[serde(rename = "type")]
    pub ticket_type: String,
    /// 0 to 1.
    pub confidence: f64,
    pub reasons: Vec<String>,
    pub provenance: Provenance,
}

/// The version name of the shipped rules.
pub const DEFAULT_VERSION: &str = "default-1";

fn rule(
    id: &str,
    keywords: &[&str],
    and_keywords: &[&str],
    severity: Option<&str>,
    ticket_type: Option<&str>,
    description: &str,
) -> Rule {
    let list = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect();
    Rule {
        id: id.into(),
        description: Some(description.into()),
        keywords: list(keywords),
        and_keywords: list(and_keywords),
        severity: severity.map(str::to_owned),
        ticket_type: ticket_type.map(str::to_owned),
    }
}

const OUTAGE: &[&str] = &[
    "outage",
    "down",
    "is down",
    "went down",
    "unavailable",
    "not responding",
    "unreachable",
    "cannot access",
    "can't access",
    "cannot log in",
    "can't log in",
    "503",
    "502",
];

/// The rules every product starts with.
pub fn default_rules() -> RuleSet {
    RuleSet {
        rules: vec![
            rule(
                "widespread-outage",
                OUTAGE,
                &[
                    "all users",
                    "everyone",
                    "all customers",
                    "every user",
                    "production",
                    "nobody can",
                ],
                Some("P0"),
                Some("incident"),
                "An outage that hits everyone",
            ),
            rule(
                "security",
                &[
                    "security",
                    "vulnerability",
                    "exploit",
                    "breach",
                    "leak",
                    "leaked",
                    "cve",
                    "unauthorized access",
                    "hacked",
                    "compromised",
                ],
                &[],
                Some("P1"),
                Some("incident"),
                "Security words",
            ),
            rule(
                "data-loss",
                &[
                    "data loss",
                    "lost data",
                    "lost all",
                    "deleted all",
                    "corrupted",
                    "corruption",
                    "missing data",
                    "data is gone",
                ],
                &[],
                Some("P1"),
                Some("bug"),
                "Data loss or corruption",
            ),
            rule(
                "outage",
                OUTAGE,
                &[],
                Some("P1"),
                Some("incident"),
                "Something is down",
            ),
            rule(
                "defect",
                &[
                    "error",
                    "bug",
                    "crash",
                    "crashes",
                    "crashed",
                    "exception",
                    "broken",
                    "fails",
                    "failing",
                    "failed",
                    "doesn't work",
                    "does not work",
                    "not working",
                    "regression",
                ],
                &[],
                Some("P2"),
                Some("bug"),
                "Something is broken",
            ),
            rule(
                "feature-request",
                &[
                    "feature request",
                    "would be nice",
                    "please add",
                    "could you add",
                    "can you add",
                    "suggestion",
                    "it would be great",
                    "enhancement",
                    "wish",
                ],
                &[],
                Some("P4"),
                Some("feature_request"),
                "A wish, not a fault",
            ),
            rule(
                "question",
                &[
                    "how do i",
                    "how to",
                    "how can i",
                    "is it possible",
                    "where can i",
                    "where do i",
                    "what is",
                    "can i",
                ],
                &[],
                None,
                Some("question"),
                "A question",
            ),
            rule(
                "cosmetic",
                &["typo", "cosmetic", "misaligned", "alignment", "spelling"],
                &[],
                Some("P4"),
                Some("bug"),
                "Cosmetic",
            ),
        ],
    }
}

/// The words of a text, lower-cased, separated by single spaces, with a space at each end,
/// so a phrase matches as whole words by `contains(" phrase ")`.
fn normalised(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    let mut gap = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || c == '\'' || c == '’' {
            if gap {
                out.push(' ');
                gap = false;
            }
            out.push(if c == '’' { '\'' } else { c });
        } else {
            gap = out.len() > 1;
        }
    }
    out.push(' ');
    out
}

/// A rule set ready to classify with: each keyword normalised once (the shipped set once per
/// process) rather than once per rule for every ticket.
#[derive(Debug, Clone)]
pub struct Compiled {
    rules: Vec<CompiledRule>,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    rule: Rule,
    /// `rule.keywords`, normalised, in the same order.
    keywords: Vec<String>,
    /// `rule.and_keywords`, normalised, in the same order.
    and_keywords: Vec<String>,
}

impl Compiled {
    /// Normalises `set`'s keywords.
    pub fn new(set: RuleSet) -> Self {
        let normalise = |words: &[String]| words.iter().map(|w| normalised(w)).collect();
        Self {
            rules: set
                .rules
                .into_iter()
                .map(|rule| CompiledRule {
                    keywords: normalise(&rule.keywords),
                    and_keywords: normalise(&rule.and_keywords),
                    rule,
                })
                .collect(),
        }
    }

    /// The shipped rules ([`default_rules`]), compiled on first use.
    pub fn shipped() -> &'static Compiled {
        static SHIPPED: std::sync::LazyLock<Compiled> =
            std::sync::LazyLock::new(|| Compiled::new(default_rules()));
        &SHIPPED
    }
}

/// The first of `words` whose normalised form (`normal`, in the same order) occurs in
/// `haystack`.
fn found<'a>(haystack: &str, words: &'a [String], normal: &[String]) -> Option<&'a str> {
    words
        .iter()
        .zip(normal)
        .find(|(_, n)| !n.trim().is_empty() && haystack.contains(n.as_str()))
        .map(|(w, _)| w.as_str())
}

/// Classifies a ticket with compiled `rules`; `version` names the rule set in the provenance.
pub fn classify_with(rules: &Compiled, version: &str, title: &str, description: &str) -> Triage {
    let text = normalised(&format!("{title}\n{description}"));
    let mut severity: Option<Severity> = None;
    let mut ticket_type: Option<TicketType> = None;
    let mut reasons = Vec::new();
    for compiled in &rules.rules {
        let r = &compiled.rule;
        let Some(word) = found(&text, &r.keywords, &compiled.keywords) else {
            continue;
        };
        let also = if r.and_keywords.is_empty() {
            None
        } else {
            match found(&text, &r.and_keywords, &compiled.and_keywords) {
                Some(w) => Some(w),
                None => continue,
            }
        };
        let sev = r.severity.as_deref().and_then(|s| Severity::parse(s).ok());
        let typ = r
            .ticket_type
            .as_deref()
            .and_then(|t| TicketType::parse(t).ok());
        if let Some(s) = sev {
            severity = Some(severity.map_or(s, |cur| cur.min(s)));
        }
        if ticket_type.is_none() {
            ticket_type = typ;
        }
        let mut why = format!("{}: \"{word}\"", r.id);
        if let Some(a) = also {
            why.push_str(&format!(" with \"{a}\""));
        }
        reasons.push(why);
    }
    let matched = reasons.len();
    if matched == 0 {
        reasons.push("no rule matched: defaults".into());
    }
    let confidence = if matched == 0 {
        0.3
    } else {
        (0.5 + 0.15 * matched as f64).min(0.95)
    };
    Triage {
        severity: severity.unwrap_or(Severity::DEFAULT).as_str().into(),
        ticket_type: ticket_type.unwrap_or(TicketType::Question).as_str().into(),
        confidence,
        reasons,
        provenance: Provenance {
            source: "rules".into(),
            model: None,
            version: version.into(),
            fallback_reason: None,
        },
    }
}

/// Checks a rule set a tenant sends; the error names the offending place
/// (`rules[3].keywords`).
pub fn validate(set: &RuleSet) -> Result<(), (String, String)> {
    let err = |field: String, msg: &str| Err((field, msg.to_owned()));
    if set.rules.is_empty() || set.rules.len() > 200 {
        return err("rules".into(), "must hold 1 to 200 rules");
    }
    let mut ids = std::collections::HashSet::new();
    for (i, r) in set.rules.iter().enumerate() {
        let at = |f: &str| format!("rules[{i}].{f}");
        let id_ok = (1..=64).contains(&r.id.len())
            && r.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            return err(
                at("id"),
                "must be 1 to 64 lower-case letters, digits, '-' or '_'",
            );
        }
        if !ids.insert(r.id.as_str()) {
            return err(at("id"), "is used by an earlier rule");
        }
        if r.description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 500)
        {
            return err(at("description"), "must be at most 500 characters");
        }
        for (name, list, min) in [
            ("keywords", &r.keywords, 1),
            ("andKeywords", &r.and_keywords, 0),
        ] {
            if list.len() < min || list.len() > 50 {
                return err(at(name), "must hold 1 to 50 words or phrases");
            }
            if list
                .iter()
                .any(|k| normalised(k).trim().is_empty() || k.chars().count() > 100)
            {
                return err(
                    at(name),
                    "each must have a letter or digit and at most 100 characters",
                );
            }
        }
        if r.severity.is_none() && r.ticket_type.is_none() {
            return err(at("severity"), "a rule must set a severity, a type or both");
        }
        if let Some(s) = &r.severity
            && let Err(m) = Severity::parse(s)
        {
            return err(at("severity"), &m);
        }
        if let Some(t) = &r.ticket_type
            && let Err(m) = TicketType::parse(t)
        {
            return err(at("type"), &m);
        }
    }
    Ok(())
}

/// What a model must answer: exactly this JSON object.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelAnswer {
    pub severity: String,
    #[serde(rename = "type")]
    pub ticket_type: String,
    pub confidence: f64,
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// Reads a model's answer strictly: unknown fields, unknown values, a confidence outside
/// 0..=1 or more than 10 reasons are refused (the caller falls back to the rules).
pub fn read_model_answer(content: &str, model: &str) -> Result<Triage, String> {
    let a: ModelAnswer =
        serde_json::from_str(content.trim()).map_err(|e| format!("not the JSON asked for: {e}"))?;
    let severity = Severity::parse(&a.severity).map_err(|m| format!("severity {m}"))?;
    let ticket_type = TicketType::parse(&a.ticket_type).map_err(|m| format!("type {m}"))?;
    if !(0.0..=1.0).contains(&a.confidence) || a.confidence.is_nan() {
        return Err("confidence must be between 0 and 1".into());
    }
    if a.reasons.len() > 10 || a.reasons.iter().any(|r| r.chars().count() > 300) {
        return Err("at most 10 reasons of 300 characters".into());
    }
    Ok(Triage {
        severity: severity.as_str().into(),
        ticket_type: ticket_type.as_str().into(),
        confidence: a.confidence,
        reasons: a.reasons,
        provenance: Provenance {
            source: "model".into(),
            model: Some(model.into()),
            version: model.into(),
            fallback_reason: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped rules, compiled once, and compiled afresh: the same answer.
    fn triage(title: &str, description: &str) -> Triage {
        let once = classify_with(Compiled::shipped(), DEFAULT_VERSION, title, description);
        let afresh = classify_with(
            &Compiled::new(default_rules()),
            DEFAULT_VERSION,
            title,
            description,
        );
        assert_eq!(once, afresh);
        once
    }

    #[test]
    fn shipped_rules_are_valid() {
        assert_eq!(validate(&default_rules()), Ok(()));
    }

    #[test]
    fn an_outage_for_everyone_is_p0() {
        let t = triage("Checkout is down", "All users get a 503 since 10:00");
        assert_eq!(
            (t.severity.as_str(), t.ticket_type.as_str()),
            ("P0", "incident")
        );
        assert!(t.reasons.iter().any(|r| r.starts_with("widespread-outage")));
        assert!(t.confidence > 0.5);
    }

    #[test]
    fn security_and_data_loss_raise_severity() {
        assert_eq!(triage("Possible data leak", "").severity, "P1");
        assert_eq!(
            triage("Invoices", "we lost data after the upgrade").severity,
            "P1"
        );
    }

    #[test]
    fn how_do_i_is_a_question_and_words_match_whole() {
        let t = triage("How do I export invoices?", "");
        assert_eq!(
            (t.ticket_type.as_str(), t.severity.as_str()),
            ("question", "P3")
        );
        // "downloads" is not "down".
        let t = triage("Downloads page", "Looking for the downloads");
        assert_eq!(t.reasons, vec!["no rule matched: defaults".to_string()]);
        assert!(t.confidence < 0.5);
    }

    #[test]
    fn rule_sets_are_checked_with_the_place_named() {
        let mut set = default_rules();
        set.rules[2].severity = Some("P7".into());
        assert_eq!(validate(&set).unwrap_err().0, "rules[2].severity");
        let mut set = default_rules();
        set.rules[1].id = set.rules[0].id.clone();
        assert_eq!(validate(&set).unwrap_err().0, "rules[1].id");
        let mut set = default_rules();
        set.rules[0].keywords = vec!["  ".into()];
        assert_eq!(validate(&set).unwrap_err().0, "rules[0].keywords");
        assert!(validate(&RuleSet { rules: vec![] }).is_err());
    }

    #[test]
    fn model_answers_are_read_strictly() {
        let ok = read_model_answer(
            r#"{"severity":"P1","type":"bug","confidence":0.8,"reasons":["crash"]}"#,
            "m",
        )
        .unwrap();
        assert_eq!(ok.provenance.source, "model");
        assert!(
            read_model_answer(r#"{"severity":"P9","type":"bug","confidence":0.8}"#, "m").is_err()
        );
        assert!(
            read_model_answer(r#"{"severity":"P1","type":"bug","confidence":1.5}"#, "m").is_err()
        );
        assert!(
            read_model_answer(
                r#"{"severity":"P1","type":"bug","confidence":0.5,"x":1}"#,
                "m"
            )
            .is_err()
        );
        assert!(read_model_answer("Sure! Here is the JSON", "m").is_err());
    }
}
