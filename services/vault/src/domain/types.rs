//! Credential types: the fields a credential of the type has, and their checks.

use fleetdesk_web::FieldErrors;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::value_types::ValueType;

/// Most fields a type may declare.
pub const MAX_FIELDS: usize = 50;

/// One field of a credential type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldDef {
    /// Stable id used by credentials (`secretAccessKey`): a letter, then letters, digits or `_`.
    pub id: String,
    /// Label shown to people.
    pub name: String,
    pub required: bool,
    /// Secure values are encrypted and revealed only with `credential.secure_values.read`.
    pub secure: bool,
    pub value_type: ValueType,
}

/// A field as a request gives it: `secure` defaults by value type (passwords, generic
/// secrets and BitLocker keys are secure), `required` to false.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldInput {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub required: bool,
    pub secure: Option<bool>,
    /// One of `GET /credential-types/value-types`.
    pub value_type: String,
}

fn field_id(s: &str) -> bool {
    let mut chars = s.chars();
    (1..=64).contains(&s.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a type's field list, naming `fields[i].x` on errors.
pub fn check_fields(input: &[FieldInput], errors: &mut FieldErrors) -> Option<Vec<FieldDef>> {
    if input.is_empty() {
        errors.push("fields", "a credential type needs at least one field");
        return None;
    }
    if input.len() > MAX_FIELDS {
        errors.push("fields", format!("at most {MAX_FIELDS} fields"));
        return None;
    }
    let mut out: Vec<FieldDef> = Vec::with_capacity(input.len());
    let mut ok = true;
    for (i, f) in input.iter().enumerate() {
        if !field_id(&f.id) {
            errors.push(
                &format!("fields[{i}].id"),
                "must be 1 to 64 letters, digits or _, starting with a letter",
            );
            ok = false;
        } else if out.iter().any(|o| o.id == f.id) {
            errors.push(
                &format!("fields[{i}].id"),
                format!("{} is used twice", f.id),
            );
            ok = false;
        }
        let name = errors.check(&format!("fields[{i}].name"), super::one_line(&f.name, 100));
        ok &= name.is_some();
        let Some(value_type) = ValueType::parse(&f.value_type) else {
            errors.push(
                &format!("fields[{i}].valueType"),
                format!(
                    "must be one of {}",
                    ValueType::ALL.map(ValueType::as_str).join(", ")
                ),
            );
            ok = false;
            continue;
        };
        let secure = f.secure.unwrap_or(matches!(
            value_type,
            ValueType::Password | ValueType::GenericSecret | ValueType::BitlockerKey
        ));
        out.push(FieldDef {
            id: f.id.clone(),
            name: name.unwrap_or_default(),
            required: f.required,
            secure,
            value_type,
        });
    }
    ok.then_some(out)
}

/// A permission scope such as `aws.credentials`: lower-case dotted words, two or more, whose
/// first word is not a category of the permission catalogue (so `<scope>.read` never names a
/// built-in node).
pub fn permission_scope(s: &str) -> Result<String, String> {
    let words: Vec<&str> = s.split('.').collect();
    let shaped = s.len() <= 100
        && words.len() >= 2
        && words.iter().all(|w| {
            let mut c = w.chars();
            c.next().is_some_and(|c| c.is_ascii_lowercase())
                && c.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    if !shaped {
        return Err(
            "must be two or more dot-separated lower-case words (e.g. aws.credentials)".into(),
        );
    }
    if fleetdesk_auth::permissions::category(words[0]).is_some() {
        return Err(format!(
            "must not start with `{}`, a category of built-in permissions",
            words[0]
        ));
    }
    Ok(s.to_owned())
}

/// The node a scope's reveals need.
pub fn scope_node(scope: &str) -> String {
    format!("{scope}.read")
}

/// An icon: an https URL or a short name (`aws`, `key`).
pub fn icon(s: &str) -> Result<String, String> {
    let s = s.trim();
    let short = (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let link = s.len() <= 2048
        && url::Url::parse(s).is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
    if short || link {
        Ok(s.to_owned())
    } else {
        Err("must be an https URL or a short name of letters, digits, - or _".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(id: &str, ty: &str) -> FieldInput {
        FieldInput {
            id: id.into(),
            name: "Label".into(),
            required: true,
            secure: None,
            value_type: ty.into(),
        }
    }

    #[test]
    fn fields_are_checked_and_secure_defaults_by_type() {
        let mut errors = FieldErrors::default();
        let out = check_fields(
            &[input("user", "plain_text"), input("pass", "password")],
            &mut errors,
        )
        .unwrap();
        assert!(!out[0].secure && out[1].secure);
        let mut errors = FieldErrors::default();
        assert!(
            check_fields(
                &[
                    input("user", "plain_text"),
                    input("user", "ssn"),
                    input("9x", "url")
                ],
                &mut errors
            )
            .is_none()
        );
        let fields: Vec<String> = errors
            .into_error()
            .problem()
            .errors
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            ["fields[1].id", "fields[1].valueType", "fields[2].id"]
        );
    }

    #[test]
    fn scopes_are_dotted_words_outside_the_catalogue() {
        assert!(permission_scope("aws.credentials").is_ok());
        assert!(permission_scope("aws").is_err());
        assert!(permission_scope("AWS.creds").is_err());
        assert!(
            permission_scope("credential.secure_values")
                .unwrap_err()
                .contains("built-in")
        );
        assert_eq!(scope_node("aws.credentials"), "aws.credentials.read");
    }
}
