//! Display names, role monikers and titles.

fn clean_text(raw: &str, max: usize) -> Result<String, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(value.to_owned())
}

/// A person's display name: 1–200 characters, no control characters.
pub fn person_name(raw: &str) -> Result<String, String> {
    clean_text(raw, 200)
}

/// A tenant's name: 1–200 characters, no control characters.
pub fn tenant_name(raw: &str) -> Result<String, String> {
    clean_text(raw, 200)
}

/// A role's title: 1–100 characters.
pub fn role_title(raw: &str) -> Result<String, String> {
    clean_text(raw, 100)
}

/// An API key's label: 1–100 characters.
pub fn key_name(raw: &str) -> Result<String, String> {
    clean_text(raw, 100)
}

/// A free-text description: up to 1000 characters, may be empty.
pub fn description(raw: &str) -> Result<String, String> {
    let value = raw.trim();
    if value.chars().count() > 1000 {
        return Err("must be at most 1000 characters".into());
    }
    Ok(value.to_owned())
}

/// A role moniker: lower-case letters, digits and `_`, starting with a letter, 2–50 long.
pub fn role_moniker(raw: &str) -> Result<String, String> {
    let value = raw.trim();
    let ok = (2..=50).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err("must be 2-50 lower-case letters, digits or _, starting with a letter".into())
    }
}

/// An avatar URL: http(s), at most 2000 characters.
pub fn avatar_url(raw: &str) -> Result<String, String> {
    let value = raw.trim();
    let ok = value.len() <= 2000
        && (value.starts_with("https://") || value.starts_with("http://"))
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(value.to_owned())
    } else {
        Err("must be an http(s) URL of at most 2000 characters".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monikers_are_snake_case_identifiers() {
        assert!(role_moniker("change_lead").is_ok());
        assert!(role_moniker("a").is_err());
        assert!(role_moniker("Admin").is_err());
        assert!(role_moniker("1st").is_err());
        assert!(role_moniker("has space").is_err());
    }

    #[test]
    fn names_refuse_empty_long_and_control_text() {
        assert_eq!(person_name("  Ada  ").unwrap(), "Ada");
        assert!(person_name("   ").is_err());
        assert!(person_name(&"x".repeat(201)).is_err());
        assert!(person_name("a\u{0}b").is_err());
        assert!(avatar_url("javascript:alert(1)").is_err());
    }
}
