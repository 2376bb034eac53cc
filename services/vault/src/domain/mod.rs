//! The vault's rules, free of HTTP and storage: value types, credential types and the checks
//! values pass.

pub mod types;
pub mod value_types;
pub mod values;

/// A one-line text (a name): trimmed, 1 to `max` characters, no line breaks.
pub fn one_line(s: &str, max: usize) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > max || t.contains(['\n', '\r']) {
        Err(format!("must be one line of 1 to {max} characters"))
    } else {
        Ok(t.to_owned())
    }
}
