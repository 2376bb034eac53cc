//! Diesel schema of the tickets database (both backends). The PostgreSQL `search` columns and
//! the SQLite FTS5 tables are reached only through `store::search`.

diesel::table! {
    products (id) {
        id -> Text,
        tenant_id -> Text,
        key -> Text,
        name -> Text,
        description -> Text,
        channels -> Text,
        default_assignee_id -> Nullable<Text>,
        lead_id -> Nullable<Text>,
        sla_policy -> Text,
        triage_rules -> Nullable<Text>,
        triage_rules_version -> BigInt,
        status -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    companies (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        identifier -> Text,
        email_domains -> Text,
        address -> Nullable<Text>,
        notes -> Text,
        external_ref -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    company_domains (tenant_id, domain) {
        tenant_id -> Text,
        domain -> Text,
        company_id -> Text,
    }
}

diesel::table! {
    ticket_counters (tenant_id) {
        tenant_id -> Text,
        last_number -> BigInt,
    }
}

diesel::table! {
    tickets (id) {
        id -> Text,
        tenant_id -> Text,
        number -> BigInt,
        key -> Text,
        product_id -> Text,
        title -> Text,
        description -> Text,
        requester_name -> Text,
        requester_email -> Text,
        company_id -> Nullable<Text>,
        channel -> Text,
        ticket_type -> Text,
        tags -> Text,
        status -> Text,
        severity_rank -> Integer,
        assignee_id -> Nullable<Text>,
        triage -> Text,
        severity_overridden -> Integer,
        escalation_level -> Integer,
        escalated_to -> Nullable<Text>,
        comments_count -> Integer,
        first_response_at -> Nullable<Timestamp>,
        resolved_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        sla_due_at -> Nullable<Timestamp>,
        created_by -> Text,
        deleted_at -> Nullable<Timestamp>,
        deleted_by -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    ticket_sla (ticket_id) {
        ticket_id -> Text,
        tenant_id -> Text,
        running_since -> Nullable<Timestamp>,
        elapsed_seconds -> BigInt,
        paused_since -> Nullable<Timestamp>,
        paused_seconds -> BigInt,
        first_response_due_at -> Nullable<Timestamp>,
        resolution_due_at -> Nullable<Timestamp>,
        first_response_breached_at -> Nullable<Timestamp>,
        resolution_breached_at -> Nullable<Timestamp>,
        first_response_seconds -> Nullable<BigInt>,
        resolution_seconds -> Nullable<BigInt>,
    }
}

diesel::table! {
    ticket_tags (tenant_id, tag, ticket_id) {
        tenant_id -> Text,
        tag -> Text,
        ticket_id -> Text,
    }
}

diesel::table! {
    ticket_comments (id) {
        id -> Text,
        tenant_id -> Text,
        ticket_id -> Text,
        author_kind -> Text,
        author_id -> Nullable<Text>,
        author_name -> Nullable<Text>,
        body -> Text,
        visibility -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ticket_history (id) {
        id -> Text,
        tenant_id -> Text,
        ticket_id -> Text,
        actor -> Text,
        field -> Text,
        from_value -> Nullable<Text>,
        to_value -> Nullable<Text>,
        note -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::table! {
    sla_ledger (id) {
        id -> Text,
        tenant_id -> Text,
        ticket_id -> Text,
        kind -> Text,
        target -> Nullable<Text>,
        detail -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        tenant_id -> Text,
        email -> Text,
        name -> Text,
        status -> Text,
        permissions -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (tenant_id, caller, key) {
        tenant_id -> Text,
        caller -> Text,
        key -> Text,
        request_hash -> Text,
        status -> Integer,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(tickets -> products (product_id));
diesel::joinable!(ticket_comments -> tickets (ticket_id));
diesel::joinable!(ticket_sla -> tickets (ticket_id));
diesel::allow_tables_to_appear_in_same_query!(
    products,
    companies,
    company_domains,
    ticket_counters,
    tickets,
    ticket_sla,
    ticket_tags,
    ticket_comments,
    ticket_history,
    sla_ledger,
    users,
    idempotency_keys,
);
