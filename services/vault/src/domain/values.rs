//! Field values of a credential checked against its type.

use std::collections::BTreeMap;

use fleetdesk_web::FieldErrors;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::types::FieldDef;

/// One value in a request; `null` (or an empty string) clears an optional field.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueInput {
    pub field_id: String,
    pub value: Option<String>,
}

impl std::fmt::Debug for ValueInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values never reach logs.
        f.debug_struct("ValueInput")
            .field("field_id", &self.field_id)
            .finish_non_exhaustive()
    }
}

impl Drop for ValueInput {
    fn drop(&mut self) {
        if let Some(v) = self.value.take() {
            drop(Zeroizing::new(v));
        }
    }
}

/// A checked value, ready to be sealed (if its field is secure) and stored.
pub struct Checked {
    pub field: FieldDef,
    pub value: Option<Zeroizing<String>>,
}

/// How the given values relate to the stored ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The given values are all there is (create, `PUT …/fields`): required fields must be
    /// present, absent ones are cleared.
    Complete,
    /// The given values change the stored ones (`PATCH`): absent fields keep their value.
    Partial,
}

/// Checks `input` (at JSON path `path`) against the type's fields. `present` names the fields
/// that have a stored value now (for `Partial`: a required field keeps being satisfied by it).
pub fn check(
    defs: &[FieldDef],
    input: &[ValueInput],
    mode: Mode,
    present: &[String],
    path: &str,
    errors: &mut FieldErrors,
) -> Option<Vec<Checked>> {
    let mut given: BTreeMap<&str, Checked> = BTreeMap::new();
    // Fields named at all (valid or not), so a bad value is not also reported as missing.
    let mut named: Vec<&str> = Vec::new();
    let mut ok = true;
    for (i, v) in input.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Some(def) = defs.iter().find(|d| d.id == v.field_id) else {
            errors.push(
                &format!("{at}.fieldId"),
                format!("the type has no field {:?}", v.field_id),
            );
            ok = false;
            continue;
        };
        if named.contains(&def.id.as_str()) {
            errors.push(
                &format!("{at}.fieldId"),
                format!("{} is given twice", def.id),
            );
            ok = false;
            continue;
        }
        named.push(&def.id);
        let value = v.value.as_deref().filter(|s| !s.is_empty());
        match value {
            Some(s) => {
                if let Err(rule) = def.value_type.check(s) {
                    errors.push(&format!("{at}.value"), format!("{} must be {rule}", def.id));
                    ok = false;
                    continue;
                }
            }
            None if def.required => {
                errors.push(&format!("{at}.value"), format!("{} is required", def.id));
                ok = false;
                continue;
            }
            None => {}
        }
        given.insert(
            &def.id,
            Checked {
                field: def.clone(),
                value: value.map(|s| Zeroizing::new(s.to_owned())),
            },
        );
    }
    for def in defs.iter().filter(|d| d.required) {
        let satisfied = named.contains(&def.id.as_str())
            || (mode == Mode::Partial && present.contains(&def.id));
        if !satisfied {
            errors.push(path, format!("the required field {} is missing", def.id));
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let mut out: Vec<Checked> = given.into_values().collect();
    if mode == Mode::Complete {
        // Fields with a stored value that the complete set leaves out are cleared.
        for id in present {
            if let Some(def) = defs.iter().find(|d| &d.id == id)
                && !out.iter().any(|c| &c.field.id == id)
            {
                out.push(Checked {
                    field: def.clone(),
                    value: None,
                });
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::value_types::ValueType;
    use super::*;

    fn def(id: &str, required: bool, ty: ValueType) -> FieldDef {
        FieldDef {
            id: id.into(),
            name: id.into(),
            required,
            secure: ty == ValueType::Password,
            value_type: ty,
        }
    }

    fn v(id: &str, value: Option<&str>) -> ValueInput {
        ValueInput {
            field_id: id.into(),
            value: value.map(str::to_owned),
        }
    }

    fn fields_of(errors: FieldErrors) -> Vec<String> {
        errors
            .into_error()
            .problem()
            .errors
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn complete_sets_need_every_required_field_and_known_valid_values() {
        let defs = [
            def("host", true, ValueType::Hostname),
            def("password", true, ValueType::Password),
            def("port", false, ValueType::Port),
        ];
        let mut e = FieldErrors::default();
        let out = check(
            &defs,
            &[v("host", Some("db.example.com")), v("password", Some("x"))],
            Mode::Complete,
            &[],
            "fields",
            &mut e,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        let mut e = FieldErrors::default();
        assert!(
            check(
                &defs,
                &[
                    v("host", Some("bad host")),
                    v("nope", Some("1")),
                    v("port", Some("99999"))
                ],
                Mode::Complete,
                &[],
                "fields",
                &mut e
            )
            .is_none()
        );
        assert_eq!(
            fields_of(e),
            [
                "fields[0].value",
                "fields[1].fieldId",
                "fields[2].value",
                "fields"
            ]
        );
    }

    #[test]
    fn partial_changes_keep_stored_required_values_but_cannot_clear_them() {
        let defs = [
            def("password", true, ValueType::Password),
            def("port", false, ValueType::Port),
        ];
        let present = vec!["password".to_owned(), "port".to_owned()];
        let mut e = FieldErrors::default();
        let out = check(
            &defs,
            &[v("port", None)],
            Mode::Partial,
            &present,
            "fields",
            &mut e,
        )
        .unwrap();
        assert!(out.len() == 1 && out[0].value.is_none());
        let mut e = FieldErrors::default();
        assert!(
            check(
                &defs,
                &[v("password", Some(""))],
                Mode::Partial,
                &present,
                "fields",
                &mut e
            )
            .is_none()
        );
        assert_eq!(fields_of(e), ["fields[0].value"]);
        // A complete set clears what it leaves out.
        let mut e = FieldErrors::default();
        let out = check(
            &defs,
            &[v("password", Some("new"))],
            Mode::Complete,
            &present,
            "fields",
            &mut e,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert!(
            out.iter()
                .any(|c| c.field.id == "port" && c.value.is_none())
        );
    }
}
