//! Every event type of every service, with its schema: the source of proto-docs/asyncapi.yaml
//! and of the audit log's descriptions.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use utoipa::openapi::{RefOr, schema::Schema};

use crate::envelope::{DecodeError, Envelope, Event, Subject};
use crate::{identity, tickets, vault};

/// One event type in the catalogue.
#[derive(Clone, Copy)]
pub struct EventSpec {
    /// Type and routing key.
    pub event_type: &'static str,
    /// Version of `data`.
    pub version: u32,
    /// Publishing service.
    pub source: &'static str,
    /// One sentence.
    pub description: &'static str,
    /// Carries a secret.
    pub sensitive: bool,
    schema_name: fn() -> String,
    schemas: fn(&mut Vec<(String, RefOr<Schema>)>),
    root: fn() -> RefOr<Schema>,
    describe: fn(&Envelope) -> Result<Subject, DecodeError>,
}

impl std::fmt::Debug for EventSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSpec")
            .field("event_type", &self.event_type)
            .field("version", &self.version)
            .finish()
    }
}

fn spec<E: Event>() -> EventSpec {
    EventSpec {
        event_type: E::TYPE,
        version: E::VERSION,
        source: E::SOURCE,
        description: E::DESCRIPTION,
        sensitive: E::SENSITIVE,
        schema_name: || E::name().into_owned(),
        schemas: E::schemas,
        root: <E as utoipa::PartialSchema>::schema,
        describe: |env| env.decode::<E>().map(|e| e.subject()),
    }
}

/// The whole catalogue, in document order. A service's events are added here with their
/// structs; the AsyncAPI test then asks for the document to be regenerated.
pub fn catalogue() -> &'static [EventSpec] {
    static ALL: std::sync::OnceLock<Vec<EventSpec>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        vec![
            spec::<identity::TenantCreated>(),
            spec::<identity::TenantUpdated>(),
            spec::<identity::UserRegistered>(),
            spec::<identity::UserInvited>(),
            spec::<identity::UserUpdated>(),
            spec::<identity::UserDeactivated>(),
            spec::<identity::UserReactivated>(),
            spec::<identity::UserDeleted>(),
            spec::<identity::RoleCreated>(),
            spec::<identity::RoleUpdated>(),
            spec::<identity::RoleDeleted>(),
            spec::<identity::PasswordResetRequested>(),
            spec::<identity::LoginFailed>(),
            spec::<identity::RefreshReuseDetected>(),
            spec::<tickets::ProductCreated>(),
            spec::<tickets::ProductUpdated>(),
            spec::<tickets::ProductArchived>(),
            spec::<tickets::CompanyCreated>(),
            spec::<tickets::CompanyUpdated>(),
            spec::<tickets::CompanyDeleted>(),
            spec::<tickets::TicketCreated>(),
            spec::<tickets::TicketUpdated>(),
            spec::<tickets::TicketStatusChanged>(),
            spec::<tickets::TicketAssigned>(),
            spec::<tickets::TicketSeverityChanged>(),
            spec::<tickets::TicketEscalated>(),
            spec::<tickets::TicketCommentAdded>(),
            spec::<tickets::TicketSlaBreached>(),
            spec::<tickets::TicketDeleted>(),
            spec::<vault::CredentialTypeCreated>(),
            spec::<vault::CredentialTypeUpdated>(),
            spec::<vault::CredentialTypeDeleted>(),
            spec::<vault::CredentialCreated>(),
            spec::<vault::CredentialUpdated>(),
            spec::<vault::CredentialDeleted>(),
            spec::<vault::CredentialSecretRevealed>(),
        ]
    })
}

/// The catalogue entry of a type and version.
pub fn find(event_type: &str, version: u32) -> Option<EventSpec> {
    catalogue()
        .iter()
        .find(|s| s.event_type == event_type && s.version == version)
        .copied()
}

/// What an event is about, for any type in the catalogue.
pub fn describe(envelope: &Envelope) -> Result<Subject, DecodeError> {
    let spec = find(&envelope.event_type, envelope.version).ok_or_else(|| {
        DecodeError::UnknownVersion {
            event_type: envelope.event_type.clone(),
            version: envelope.version,
        }
    })?;
    (spec.describe)(envelope)
}

/// The AsyncAPI 3 document of the exchange, routing keys and every event's schema.
pub fn asyncapi(exchange: &str) -> Value {
    let mut channels = BTreeMap::new();
    let mut operations = BTreeMap::new();
    let mut messages = BTreeMap::new();
    let mut schemas: BTreeMap<String, Value> = BTreeMap::new();
    let envelope =
        serde_json::to_value(<Envelope as utoipa::PartialSchema>::schema()).unwrap_or(Value::Null);
    schemas.insert("Envelope".into(), envelope);
    for spec in catalogue() {
        let name = (spec.schema_name)();
        let mut nested = Vec::new();
        (spec.schemas)(&mut nested);
        for (n, s) in nested {
            schemas.insert(n, serde_json::to_value(s).unwrap_or(Value::Null));
        }
        schemas.insert(
            name.clone(),
            serde_json::to_value((spec.root)()).unwrap_or(Value::Null),
        );
        let channel = spec.event_type.replace('.', "_");
        messages.insert(
            name.clone(),
            json!({
                "name": spec.event_type,
                "title": name,
                "summary": spec.description,
                "contentType": "application/json",
                "x-fleetdesk-sensitive": spec.sensitive,
                "correlationId": {"location": "$message.payload#/id"},
                "payload": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Envelope"},
                        {
                            "type": "object",
                            "properties": {
                                "type": {"const": spec.event_type},
                                "version": {"const": spec.version},
                                "source": {"const": spec.source},
                                "data": {"$ref": format!("#/components/schemas/{name}")}
                            }
                        }
                    ]
                },
                "bindings": {"amqp": {
                    "contentEncoding": "utf-8",
                    "messageType": spec.event_type,
                    "deliveryMode": 2,
                    "bindingVersion": "0.3.0"
                }}
            }),
        );
        channels.insert(
            channel.clone(),
            json!({
                "address": spec.event_type,
                "description": format!("Routing key `{}` on exchange `{exchange}`.", spec.event_type),
                "messages": {name.clone(): {"$ref": format!("#/components/messages/{name}")}},
                "bindings": {"amqp": {
                    "is": "routingKey",
                    "exchange": {"name": exchange, "type": "topic", "durable": true, "autoDelete": false, "vhost": "/"},
                    "bindingVersion": "0.3.0"
                }}
            }),
        );
        operations.insert(
            format!("{}_publish", channel),
            json!({
                "action": "send",
                "summary": format!("{} publishes {}", spec.source, spec.event_type),
                "channel": {"$ref": format!("#/channels/{channel}")},
                "messages": [{"$ref": format!("#/channels/{channel}/messages/{name}")}]
            }),
        );
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Fleetdesk events",
            "version": "1.0.0",
            "description": "Events the Fleetdesk services publish on one durable topic exchange; the routing key is the event type. Every message is an Envelope whose `data` is the type's own schema. Delivery is at least once: consumers deduplicate on `id`. Generated from crates/events (test `asyncapi_is_current`); do not edit by hand."
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "rabbitmq:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "Exchange `fleetdesk.events` (topic, durable). Each consuming service owns `<service>.events`, retry queues `<service>.retry.<n>` and the parking queue `<service>.dead`."
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas}
    })
}

/// Renders a JSON value as YAML (block style, every string double-quoted, which YAML reads
/// exactly as JSON does).
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_node(&mut out, value, 0, false);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn key(k: &str) -> String {
    let plain = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if plain {
        k.to_owned()
    } else {
        serde_json::to_string(k).unwrap_or_default()
    }
}

// `inline`: the first line goes after a "- " already written.
fn write_node(out: &mut String, value: &Value, indent: usize, inline: bool) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (i, (k, v)) in map.iter().enumerate() {
                if !(inline && i == 0) {
                    out.push_str(&pad);
                }
                out.push_str(&key(k));
                out.push(':');
                if is_block(v) {
                    out.push('\n');
                    write_node(out, v, indent + 2, false);
                } else {
                    out.push(' ');
                    out.push_str(&scalar(v));
                    out.push('\n');
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                if !(inline && i == 0) {
                    out.push_str(&pad);
                }
                out.push_str("- ");
                if is_block(v) {
                    write_node(out, v, indent + 2, true);
                } else {
                    out.push_str(&scalar(v));
                    out.push('\n');
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_unique_and_well_named() {
        let all = catalogue();
        let mut seen = std::collections::HashSet::new();
        for spec in all {
            assert!(
                seen.insert((spec.event_type, spec.version)),
                "{} listed twice",
                spec.event_type
            );
            let parts: Vec<&str> = spec.event_type.split('.').collect();
            assert_eq!(parts.len(), 2, "{} is not <entity>.<verb>", spec.event_type);
            assert!(
                spec.event_type
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{}",
                spec.event_type
            );
        }
    }

    #[test]
    fn yaml_nests_maps_and_lists() {
        let v = json!({"a": {"b": [1, {"c": "x y", "d": []}], "e": {}}, "$ref": "#/x"});
        let yaml = to_yaml(&v);
        assert_eq!(
            yaml,
            "\"$ref\": \"#/x\"\na:\n  b:\n    - 1\n    - c: \"x y\"\n      d: []\n  e: {}\n"
        );
    }

    /// proto-docs/asyncapi.yaml is generated from the catalogue; rerun with
    /// UPDATE_PROTO_DOCS=1 after adding or changing an event.
    #[test]
    fn asyncapi_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../proto-docs/asyncapi.yaml"
        );
        let want = to_yaml(&asyncapi("fleetdesk.events"));
        if std::env::var_os("UPDATE_PROTO_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "proto-docs/asyncapi.yaml is out of date: run UPDATE_PROTO_DOCS=1 cargo test -p fleetdesk-events"
        );
    }

    #[test]
    fn asyncapi_names_every_type_and_its_schema() {
        let doc = asyncapi("fleetdesk.events");
        for spec in catalogue() {
            let channel = spec.event_type.replace('.', "_");
            assert_eq!(doc["channels"][&channel]["address"], spec.event_type);
            let name = (spec.schema_name)();
            assert!(doc["components"]["schemas"][&name].is_object(), "{name}");
        }
    }
}
