//! Diesel schema of the identity database (both backends).

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        settings -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        tenant_id -> Text,
        email -> Text,
        name -> Text,
        password_hash -> Nullable<Text>,
        status -> Text,
        permissions -> Text,
        avatar_url -> Nullable<Text>,
        version -> BigInt,
        last_login_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    roles (id) {
        id -> Text,
        tenant_id -> Text,
        moniker -> Text,
        title -> Text,
        description -> Text,
        permissions -> Text,
        system -> Integer,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    user_roles (user_id, role_id) {
        user_id -> Text,
        role_id -> Text,
        tenant_id -> Text,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        tenant_id -> Text,
        user_id -> Text,
        family_id -> Text,
        token_hash -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        tenant_id -> Text,
        user_id -> Text,
        name -> Text,
        prefix -> Text,
        secret_hash -> Text,
        permissions -> Text,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    invites (id) {
        id -> Text,
        tenant_id -> Text,
        email -> Text,
        name -> Text,
        roles -> Text,
        token_hash -> Text,
        invited_by -> Text,
        expires_at -> Timestamp,
        accepted_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    password_resets (id) {
        id -> Text,
        tenant_id -> Text,
        user_id -> Text,
        token_hash -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        private_seed -> Text,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_throttles (key) {
        key -> Text,
        failures -> Integer,
        locked_until -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(users -> tenants (tenant_id));
diesel::joinable!(user_roles -> users (user_id));
diesel::joinable!(user_roles -> roles (role_id));
diesel::allow_tables_to_appear_in_same_query!(tenants, users, roles, user_roles);

diesel::table! {
    audit_log (id) {
        id -> Text,
        tenant_id -> Nullable<Text>,
        actor -> Text,
        action -> Text,
        entity_type -> Text,
        entity_id -> Text,
        summary -> Text,
        source -> Text,
        trace_id -> Nullable<Text>,
        occurred_at -> Timestamp,
        recorded_at -> Timestamp,
    }
}
