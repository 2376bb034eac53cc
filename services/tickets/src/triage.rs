//! Triage at ticket creation: the product's rules (or the shipped ones), or — when
//! `FLEETDESK_TRIAGE_LLM_URL` is set — a model asked for a strict JSON answer within the
//! configured timeout, falling back to the rules on any failure.

use serde_json::{Value, json};

use crate::config::LlmConfig;
use crate::domain::triage::{self, Compiled, DEFAULT_VERSION, RuleSet, Triage};
use crate::store::products::ProductRow;

/// The rules a product triages with, and their version name.
pub fn rules_of(product: &ProductRow) -> (RuleSet, String) {
    own_rules(product).unwrap_or_else(|| (triage::default_rules(), DEFAULT_VERSION.to_owned()))
}

/// The rules `product` replaced the shipped ones with, if any, and their version name.
fn own_rules(product: &ProductRow) -> Option<(RuleSet, String)> {
    let rules = serde_json::from_str::<RuleSet>(product.triage_rules.as_deref()?).ok()?;
    Some((rules, format!("product-{}", product.triage_rules_version)))
}

const SYSTEM_PROMPT: &str = "You triage support tickets of a software product. Answer with one \
JSON object and nothing else: {\"severity\": \"P0\"|\"P1\"|\"P2\"|\"P3\"|\"P4\", \"type\": \
\"bug\"|\"incident\"|\"question\"|\"feature_request\"|\"task\", \"confidence\": number between \
0 and 1, \"reasons\": [short strings]}. P0 means everything is down for everyone; P4 is \
cosmetic. Outages, data loss and security problems are severe.";

/// Asks the model; any failure (timeout, transport, status, shape) is the reason returned.
async fn ask_model(
    http: &reqwest::Client,
    llm: &LlmConfig,
    title: &str,
    description: &str,
) -> Result<Triage, String> {
    let body = json!({
        "model": llm.model,
        "temperature": 0,
        "response_format": {"type": "json_object"},
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": format!("Title: {title}\n\nDescription:\n{description}")},
        ],
    });
    let mut request = http.post(&llm.url).timeout(llm.timeout).json(&body);
    if let Some(key) = &llm.api_key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            format!(
                "the model did not answer within {} ms",
                llm.timeout.as_millis()
            )
        } else {
            "the model could not be reached".to_owned()
        }
    })?;
    if !response.status().is_success() {
        return Err(format!(
            "the model answered HTTP {}",
            response.status().as_u16()
        ));
    }
    let answer: Value = response.json().await.map_err(|e| {
        if e.is_timeout() {
            format!(
                "the model did not answer within {} ms",
                llm.timeout.as_millis()
            )
        } else {
            "the model's answer is not JSON".to_owned()
        }
    })?;
    let content = answer["choices"][0]["message"]["content"]
        .as_str()
        .ok_or("the model's answer has no choices[0].message.content")?;
    triage::read_model_answer(content, &llm.model)
}

/// Triages a new ticket of `product` by its rules (or the shipped ones, compiled once).
pub fn by_rules(product: &ProductRow, title: &str, description: &str) -> Triage {
    match own_rules(product) {
        Some((rules, version)) => {
            triage::classify_with(&Compiled::new(rules), &version, title, description)
        }
        None => triage::classify_with(Compiled::shipped(), DEFAULT_VERSION, title, description),
    }
}

/// Triages a new ticket of `product` by the model, falling back to the rules.
pub async fn by_model(
    http: &reqwest::Client,
    llm: &LlmConfig,
    product: &ProductRow,
    title: &str,
    description: &str,
) -> Triage {
    let by_rules = by_rules(product, title, description);
    match ask_model(http, llm, title, description).await {
        Ok(t) => {
            metrics::counter!("triage_total", "source" => "model").increment(1);
            t
        }
        Err(reason) => {
            tracing::warn!(%reason, "triage model failed; using the rules");
            metrics::counter!("triage_total", "source" => "rules_fallback").increment(1);
            let mut t = by_rules;
            t.provenance.fallback_reason = Some(reason);
            t
        }
    }
}
