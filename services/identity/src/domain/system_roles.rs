//! The roles every tenant is created with. They cannot be deleted; `admin` cannot change.

/// A system role.
#[derive(Debug, Clone)]
pub struct SystemRole {
    /// Its moniker.
    pub moniker: &'static str,
    /// Its title.
    pub title: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// The nodes it grants.
    pub permissions: Vec<&'static str>,
}

/// The moniker of the role that holds `*`.
pub const ADMIN: &str = "admin";

const SELF_SERVICE: &[&str] = &[
    "user.read",
    "user.write",
    "tenant.read",
    "api_key.read",
    "api_key.create",
    "api_key.delete",
    "notification.read",
    "notification.preferences.update",
];

/// The system roles, in display order.
pub fn all() -> Vec<SystemRole> {
    fn with(extra: &[&'static str]) -> Vec<&'static str> {
        SELF_SERVICE.iter().chain(extra).copied().collect()
    }
    vec![
        SystemRole {
            moniker: ADMIN,
            title: "Administrator",
            description: "Everything, in every service",
            permissions: vec!["*"],
        },
        SystemRole {
            moniker: "agent",
            title: "Support agent",
            description: "Works tickets: replies, internal notes, assignment, escalation",
            permissions: with(&[
                "user.read.other",
                "user.list.other",
                "role.read",
                "product.read",
                "company.read",
                "ticket.read",
                "ticket.create",
                "ticket.update",
                "ticket.status.update",
                "ticket.assign",
                "ticket.severity.override",
                "ticket.escalate",
                "ticket.comment.public",
                "ticket.comment.internal",
                "ticket.comment.read_internal",
                "knowledge.article.read",
                "knowledge.known_issue.read",
                "change_request.read",
                "change_request.create",
                "credential_type.read",
                "credential.read",
                "template.read",
            ]),
        },
        SystemRole {
            moniker: "lead",
            title: "Support lead",
            description: "An agent who also manages the team, customers and products",
            permissions: with(&[
                "user.read.other",
                "user.list.other",
                "user.invite",
                "user.deactivate",
                "role.read",
                "role.list",
                "product.*",
                "company.*",
                "ticket.*",
                "integration.github.manage",
                "knowledge.article.read",
                "knowledge.known_issue.*",
                "change_request.read",
                "change_request.create",
                "audit.read",
                "credential_type.read",
                "credential.read",
                "template.read",
                "webhook.read",
            ]),
        },
        SystemRole {
            moniker: "knowledge_lead",
            title: "Knowledge lead",
            description: "Writes and publishes articles and known issues",
            permissions: with(&[
                "user.read.other",
                "user.list.other",
                "product.read",
                "ticket.read",
                "knowledge.*",
            ]),
        },
        SystemRole {
            moniker: "change_lead",
            title: "Change lead",
            description: "Reviews, approves and ships change requests",
            permissions: with(&[
                "user.read.other",
                "user.list.other",
                "product.read",
                "company.read",
                "ticket.read",
                "ticket.comment.read_internal",
                "knowledge.article.read",
                "knowledge.known_issue.read",
                "change_request.*",
            ]),
        },
        SystemRole {
            moniker: "vault_user",
            title: "Vault user",
            description: "Reads and manages customers' credentials, including secure values",
            permissions: with(&["company.read", "credential_type.read", "credential.*"]),
        },
        SystemRole {
            moniker: "viewer",
            title: "Viewer",
            description: "Reads tickets, knowledge and changes",
            permissions: with(&[
                "product.read",
                "company.read",
                "ticket.read",
                "knowledge.article.read",
                "knowledge.known_issue.read",
                "change_request.read",
            ]),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_role_grants_only_catalogue_nodes() {
        for role in all() {
            for node in &role.permissions {
                assert!(
                    fleetdesk_auth::permissions::is_grantable(node),
                    "{} grants unknown {node}",
                    role.moniker
                );
            }
        }
    }
}
