//! The permission catalogue of every Fleetdesk service, and wildcard matching.
//!
//! Nodes are dotted (`ticket.read`, `credential.secure_values.read`). A grant of `*` allows
//! everything; `prefix.*` allows every node that starts with `prefix.`. Each node also has a
//! marker type in [`perm`] so a handler can name what it needs in its signature
//! (`Require<perm::TicketRead>`).

use serde::Serialize;

/// One permission node of the catalogue.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Node {
    /// The dotted name, e.g. `ticket.read`.
    pub node: &'static str,
    /// What holding it allows.
    pub description: &'static str,
    /// Nodes this one is useless without (informational; granting does not add them).
    pub dependencies: &'static [&'static str],
}

/// A group of nodes, as served by `GET /permissions`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Category {
    /// The key used in `GET /permissions/{category}`.
    pub key: &'static str,
    /// A short heading.
    pub name: &'static str,
    /// What the category covers.
    pub description: &'static str,
    /// Its nodes.
    pub permissions: &'static [Node],
}

/// What a handler requires: one or more nodes, all of which must be granted.
pub trait Requirement {
    /// Appends the nodes required to `out`.
    fn collect(out: &mut Vec<&'static str>);

    /// The nodes required.
    fn nodes() -> Vec<&'static str> {
        let mut out = Vec::new();
        Self::collect(&mut out);
        out
    }
}

macro_rules! catalogue {
    ($( $key:literal, $name:literal, $desc:literal {
        $( $marker:ident = $node:literal : $ndesc:literal [ $($dep:literal),* ] ; )*
    } )*) => {
        /// Every category of the catalogue, in display order.
        pub static CATEGORIES: &[Category] = &[
            $( Category { key: $key, name: $name, description: $desc, permissions: &[
                $( Node { node: $node, description: $ndesc, dependencies: &[$($dep),*] }, )*
            ] }, )*
        ];

        /// Marker types, one per node, for `Require<...>` extractors.
        pub mod perm {
            $($(
                #[doc = concat!("`", $node, "`: ", $ndesc)]
                #[derive(Debug, Clone, Copy)]
                pub struct $marker;
                impl super::Requirement for $marker {
                    fn collect(out: &mut Vec<&'static str>) { out.push($node) }
                }
            )*)*
        }
    };
}

catalogue! {
    "global", "Global", "Wildcard grants that cover every resource" {
        All = "*" : "Full access to every resource and action (the admin role)" [];
    }
    "user", "Users", "Profiles and accounts of the tenant's people" {
        UserRead = "user.read" : "Read your own profile" [];
        UserWrite = "user.write" : "Change your own profile and password" ["user.read"];
        UserReadOther = "user.read.other" : "Read another user's profile" [];
        UserListOther = "user.list.other" : "List the tenant's users" ["user.read.other"];
        UserWriteOther = "user.write.other" : "Change another user's profile" ["user.read.other"];
        UserRolesOther = "user.roles.other" : "Change another user's roles" ["user.write.other"];
        UserPermissionsOther = "user.permissions.other" : "Grant or remove another user's direct permissions" ["user.write.other"];
        UserDeleteOther = "user.delete.other" : "Delete another user" ["user.read.other"];
        UserInvite = "user.invite" : "Invite people to the tenant" [];
        UserDeactivate = "user.deactivate" : "Deactivate and reactivate users" ["user.read.other"];
        UserResetPasswordOther = "user.reset_password.other" : "Start a password reset for another user" ["user.read.other"];
    }
    "role", "Roles", "Roles and the permission nodes they grant" {
        RoleRead = "role.read" : "Read roles and the permission catalogue" [];
        RoleList = "role.list" : "List the tenant's roles" ["role.read"];
        RoleCreate = "role.create" : "Create roles" ["role.read"];
        RoleModify = "role.modify" : "Change roles and their permissions" ["role.read"];
        RoleDelete = "role.delete" : "Delete roles that are not system roles" ["role.read"];
    }
    "api_key", "API keys", "Keys for programmatic access" {
        ApiKeyRead = "api_key.read" : "List your own API keys" [];
        ApiKeyCreate = "api_key.create" : "Create API keys for yourself" [];
        ApiKeyDelete = "api_key.delete" : "Revoke your own API keys" [];
        ApiKeyReadOther = "api_key.read.other" : "List every API key of the tenant" ["api_key.read"];
        ApiKeyDeleteOther = "api_key.delete.other" : "Revoke anyone's API key" ["api_key.read.other"];
    }
    "tenant", "Tenant", "The tenant's own name and settings" {
        TenantRead = "tenant.read" : "Read the tenant's name and settings" [];
        TenantUpdate = "tenant.update" : "Change the tenant's name and settings" ["tenant.read"];
    }
    "audit", "Audit", "The tenant's audit log" {
        AuditRead = "audit.read" : "Read the audit log" [];
    }
    "product", "Products", "Products that tickets are raised about" {
        ProductRead = "product.read" : "Read products" [];
        ProductCreate = "product.create" : "Create products" ["product.read"];
        ProductUpdate = "product.update" : "Change products and their SLA policies" ["product.read"];
        ProductArchive = "product.archive" : "Archive products" ["product.read"];
        ProductTriageRulesUpdate = "product.triage_rules.update" : "Replace a product's triage rules" ["product.read"];
    }
    "company", "Companies", "Customer accounts" {
        CompanyRead = "company.read" : "Read companies" [];
        CompanyReadAddress = "company.read.address" : "See a company's address" ["company.read"];
        CompanyCreate = "company.create" : "Create companies" ["company.read"];
        CompanyUpdate = "company.update" : "Change companies" ["company.read"];
        CompanyDelete = "company.delete" : "Delete companies" ["company.read"];
    }
    "ticket", "Tickets", "Tickets, comments, workflow and SLAs" {
        TicketRead = "ticket.read" : "Read tickets, public comments, history and SLA state" [];
        TicketCreate = "ticket.create" : "Create tickets" [];
        TicketUpdate = "ticket.update" : "Change a ticket's title, description, type, tags and company" ["ticket.read"];
        TicketStatusUpdate = "ticket.status.update" : "Move a ticket through the workflow" ["ticket.read"];
        TicketAssign = "ticket.assign" : "Assign tickets" ["ticket.read"];
        TicketSeverityOverride = "ticket.severity.override" : "Override the triaged severity" ["ticket.read"];
        TicketEscalate = "ticket.escalate" : "Escalate tickets to a lead" ["ticket.read"];
        TicketCommentPublic = "ticket.comment.public" : "Reply publicly on tickets" ["ticket.read"];
        TicketCommentInternal = "ticket.comment.internal" : "Add internal notes" ["ticket.comment.read_internal"];
        TicketCommentReadInternal = "ticket.comment.read_internal" : "Read internal notes" ["ticket.read"];
        TicketReopen = "ticket.reopen" : "Reopen closed tickets" ["ticket.status.update"];
        TicketDelete = "ticket.delete" : "Delete tickets (kept for audit)" ["ticket.read"];
        TicketStatsRead = "ticket.stats.read" : "Read ticket statistics" [];
    }
    "integration", "Integrations", "Connections to outside systems" {
        IntegrationGithubManage = "integration.github.manage" : "Configure the GitHub integration and link issues" [];
    }
    "knowledge", "Knowledge", "Articles and known issues" {
        KnowledgeArticleRead = "knowledge.article.read" : "Read and search articles" [];
        KnowledgeArticleCreate = "knowledge.article.create" : "Write articles" ["knowledge.article.read"];
        KnowledgeArticleUpdate = "knowledge.article.update" : "Change articles" ["knowledge.article.read"];
        KnowledgeArticlePublish = "knowledge.article.publish" : "Publish and unpublish articles" ["knowledge.article.read"];
        KnowledgeArticleDelete = "knowledge.article.delete" : "Delete articles" ["knowledge.article.read"];
        KnowledgeKnownIssueRead = "knowledge.known_issue.read" : "Read known issues" [];
        KnowledgeKnownIssueCreate = "knowledge.known_issue.create" : "Record known issues" ["knowledge.known_issue.read"];
        KnowledgeKnownIssueUpdate = "knowledge.known_issue.update" : "Change a known issue's status, workaround or fix version" ["knowledge.known_issue.read"];
    }
    "change_request", "Change requests", "Fixes, their approval and their pull requests" {
        ChangeRequestRead = "change_request.read" : "Read change requests" [];
        ChangeRequestCreate = "change_request.create" : "Create change requests from tickets" ["change_request.read"];
        ChangeRequestUpdate = "change_request.update" : "Edit change requests and PR drafts" ["change_request.read"];
        ChangeRequestApprove = "change_request.approve" : "Approve change requests" ["change_request.read"];
        ChangeRequestReject = "change_request.reject" : "Reject change requests" ["change_request.read"];
        ChangeRequestPushGithub = "change_request.push_github" : "Open the pull request of an approved change on GitHub" ["change_request.read"];
    }
    "credential", "Credentials", "Customers' secrets in the vault" {
        CredentialRead = "credential.read" : "Read credentials, without secure values" [];
        CredentialCreate = "credential.create" : "Create credentials" ["credential.read"];
        CredentialUpdate = "credential.update" : "Change credentials" ["credential.read"];
        CredentialDelete = "credential.delete" : "Delete credentials" ["credential.read"];
        CredentialFieldsRead = "credential.fields.read" : "Read credential fields (secure ones as ciphertext)" ["credential.read"];
        CredentialFieldsUpdate = "credential.fields.update" : "Replace credential fields" ["credential.update"];
        CredentialSecureValuesRead = "credential.secure_values.read" : "Reveal secure values (every reveal is audited)" ["credential.read"];
        CredentialHistoryRead = "credential.history.read" : "Read the version history of fields" ["credential.read"];
        CredentialRestore = "credential.restore" : "Restore an earlier version of a field" ["credential.update"];
    }
    "credential_type", "Credential types", "The shapes credentials take" {
        CredentialTypeRead = "credential_type.read" : "Read credential types" [];
        CredentialTypeCreate = "credential_type.create" : "Create credential types" ["credential_type.read"];
        CredentialTypeUpdate = "credential_type.update" : "Change credential types" ["credential_type.read"];
        CredentialTypeDelete = "credential_type.delete" : "Delete credential types and their credentials" ["credential_type.read"];
    }
    "vault", "Vault", "The vault's keys" {
        VaultKeysRead = "vault.keys.read" : "See key versions and what they wrap" [];
        VaultKeysRotate = "vault.keys.rotate" : "Rotate the key-encryption key (rewraps every data key)" ["vault.keys.read"];
        VaultSettingsUpdate = "vault.settings.update" : "Change the tenant's vault settings (whether reveals need a reason)" [];
    }
    "notification", "Notifications", "In-app notifications and preferences" {
        NotificationRead = "notification.read" : "Read and mark your own notifications" [];
        NotificationPreferencesUpdate = "notification.preferences.update" : "Change your notification preferences" [];
        NotificationSend = "notification.send" : "Send notifications (services)" [];
    }
    "template", "Templates", "Email templates and branding" {
        TemplateRead = "template.read" : "Read email templates and branding" [];
        TemplateUpdate = "template.update" : "Change email templates and branding" ["template.read"];
    }
    "webhook", "Webhooks", "Outgoing webhook subscriptions" {
        WebhookRead = "webhook.read" : "Read webhook subscriptions and deliveries" [];
        WebhookCreate = "webhook.create" : "Create webhook subscriptions" ["webhook.read"];
        WebhookUpdate = "webhook.update" : "Change webhook subscriptions" ["webhook.read"];
        WebhookDelete = "webhook.delete" : "Delete webhook subscriptions" ["webhook.read"];
    }
}

macro_rules! requirement_tuple {
    ($($t:ident),+) => {
        impl<$($t: Requirement),+> Requirement for ($($t,)+) {
            fn collect(out: &mut Vec<&'static str>) {
                $( $t::collect(out); )+
            }
        }
    };
}
requirement_tuple!(A, B);
requirement_tuple!(A, B, C);

/// Every node of the catalogue, flat.
pub fn all_nodes() -> impl Iterator<Item = &'static Node> {
    CATEGORIES.iter().flat_map(|c| c.permissions.iter())
}

/// The category with this key.
pub fn category(key: &str) -> Option<&'static Category> {
    CATEGORIES.iter().find(|c| c.key == key)
}

/// Whether one granted node (possibly a wildcard) allows the `required` node.
///
/// `required` may itself be a wildcard (when checking that a grant is covered by the
/// granter's own permissions): `ticket.*` covers `ticket.*` and `ticket.read`, but
/// `ticket.read` does not cover `ticket.*`.
pub fn grants(granted: &str, required: &str) -> bool {
    if granted == "*" || granted == required {
        return true;
    }
    match granted.strip_suffix('*') {
        Some(prefix) if prefix.ends_with('.') => required.starts_with(prefix),
        _ => false,
    }
}

/// Whether a node may be granted: `*`, a catalogue node, `prefix.*` where some catalogue
/// node starts with `prefix.`, or a credential-type scope node (see [`is_scope_node`]).
pub fn is_grantable(node: &str) -> bool {
    if node == "*" {
        return true;
    }
    match node.strip_suffix(".*") {
        Some(prefix) if !prefix.is_empty() => {
            let dotted = format!("{prefix}.");
            all_nodes().any(|n| n.node.starts_with(&dotted))
        }
        _ => all_nodes().any(|n| n.node == node) || is_scope_node(node),
    }
}

/// Whether `node` is `<scope>.read` for a credential-type permission scope: two or more
/// lower-case dotted words (`aws.credentials.read`) whose first word is not a catalogue
/// category, so a misspelt built-in node (`ticket.raed`) is still refused. The vault asks for
/// it, besides `credential.secure_values.read`, to reveal secrets of a type with that scope.
pub fn is_scope_node(node: &str) -> bool {
    let Some(scope) = node.strip_suffix(".read") else {
        return false;
    };
    let words: Vec<&str> = scope.split('.').collect();
    node.len() <= 105
        && words.len() >= 2
        && category(words[0]).is_none()
        && words.iter().all(|w| {
            let mut c = w.chars();
            c.next().is_some_and(|c| c.is_ascii_lowercase())
                && c.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

/// A set of granted nodes with wildcard-aware checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(Vec<String>);

impl Grants {
    /// The grants as given.
    pub fn new(nodes: Vec<String>) -> Self {
        Self(nodes)
    }

    /// Whether `node` is allowed by any grant.
    pub fn allows(&self, node: &str) -> bool {
        self.0.iter().any(|g| grants(g, node))
    }

    /// The nodes of `wanted` that these grants do not cover (empty when all are covered).
    pub fn missing<'a>(&self, wanted: &'a [String]) -> Vec<&'a str> {
        wanted
            .iter()
            .filter(|w| !self.allows(w))
            .map(String::as_str)
            .collect()
    }

    /// The granted nodes.
    pub fn nodes(&self) -> &[String] {
        &self.0
    }
}

/// Merges grants into a sorted list without duplicates; `*` alone when present.
pub fn effective(nodes: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut all: Vec<String> = nodes.into_iter().collect();
    if all.iter().any(|g| g == "*") {
        return vec!["*".into()];
    }
    all.sort();
    all.dedup();
    // Drop nodes already covered by a wildcard in the set.
    let wildcards: Vec<String> = all.iter().filter(|g| g.ends_with(".*")).cloned().collect();
    all.retain(|g| !wildcards.iter().any(|w| w != g && grants(w, g)));
    all
}

/// Renders the catalogue as Markdown (proto-docs/permissions.md).
pub fn render_markdown() -> String {
    let mut out = String::from(
        "# Fleetdesk permission nodes\n\n\
         Generated from `crates/auth/src/permissions.rs` by \
         `UPDATE_PROTO_DOCS=1 cargo test -p fleetdesk-auth`; do not edit by hand.\n\n\
         A grant of `*` allows every node; `prefix.*` allows every node that starts with \
         `prefix.`. Grants accumulate over a user's roles and direct permissions.\n",
    );
    for c in CATEGORIES {
        out.push_str(&format!(
            "\n## {} (`{}`)\n\n{}\n\n",
            c.name, c.key, c.description
        ));
        out.push_str("| node | description | depends on |\n|---|---|---|\n");
        for n in c.permissions {
            let deps = n
                .dependencies
                .iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>();
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                n.node,
                n.description,
                deps.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_by_dotted_prefix() {
        assert!(grants("*", "credential.secure_values.read"));
        assert!(grants("ticket.*", "ticket.read"));
        assert!(grants("ticket.*", "ticket.comment.internal"));
        assert!(!grants("ticket.*", "tickets.read"));
        assert!(!grants("ticket", "ticket.read"));
        assert!(!grants("ticket.read", "ticket.*"));
        assert!(grants("ticket.*", "ticket.*"));
        assert!(!grants("ticket.read", "ticket.reopen"));
    }

    #[test]
    fn every_node_is_unique_and_dependencies_exist() {
        let mut seen = std::collections::HashSet::new();
        for n in all_nodes() {
            assert!(seen.insert(n.node), "{} appears twice", n.node);
        }
        for n in all_nodes() {
            for d in n.dependencies {
                assert!(seen.contains(d), "{} depends on unknown {d}", n.node);
            }
        }
    }

    #[test]
    fn only_catalogue_nodes_and_real_prefixes_are_grantable() {
        assert!(is_grantable("*"));
        assert!(is_grantable("ticket.read"));
        assert!(is_grantable("ticket.*"));
        assert!(is_grantable("ticket.comment.*"));
        assert!(!is_grantable("ticket.nonsense"));
        assert!(!is_grantable("nothing.*"));
        assert!(!is_grantable(".*"));
        assert!(!is_grantable(""));
        // Scope nodes of credential types, never shadowing built-in categories.
        assert!(is_grantable("aws.credentials.read"));
        assert!(!is_grantable("ticket.comment.read"));
        assert!(!is_grantable("aws.read"));
        assert!(!is_grantable("Aws.Credentials.read"));
        assert!(!is_grantable("aws.credentials.write"));
    }

    #[test]
    fn effective_grants_collapse_under_wildcards() {
        let e = effective(["ticket.read".into(), "ticket.*".into(), "user.read".into()]);
        assert_eq!(e, vec!["ticket.*".to_string(), "user.read".to_string()]);
        assert_eq!(effective(["a.b".into(), "*".into()]), vec!["*".to_string()]);
    }

    #[test]
    fn tuples_require_every_node() {
        assert_eq!(
            <(perm::UserReadOther, perm::UserListOther)>::nodes(),
            vec!["user.read.other", "user.list.other"]
        );
    }

    #[test]
    fn permissions_md_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../proto-docs/permissions.md"
        );
        let rendered = render_markdown();
        if std::env::var_os("UPDATE_PROTO_DOCS").is_some() {
            std::fs::write(path, &rendered).unwrap();
        }
        let stored = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            stored == rendered,
            "proto-docs/permissions.md is stale: run UPDATE_PROTO_DOCS=1 cargo test -p fleetdesk-auth"
        );
    }
}
