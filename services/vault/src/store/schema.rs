//! Diesel schema of the vault database (both backends).

diesel::table! {
    vault_meta (id) {
        id -> Integer,
        check_value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    vault_keys (version) {
        version -> Integer,
        wrapped -> Nullable<Text>,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    companies (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        identifier -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    credential_types (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        name_lower -> Text,
        icon -> Nullable<Text>,
        permission_scope -> Nullable<Text>,
        fields -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    credentials (id) {
        id -> Text,
        tenant_id -> Text,
        type_id -> Text,
        company_id -> Text,
        name -> Text,
        name_lower -> Text,
        notes -> Text,
        data_key -> Text,
        kek_version -> Integer,
        version -> BigInt,
        created_by -> Text,
        updated_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    credential_values (credential_id, field_id, version) {
        credential_id -> Text,
        field_id -> Text,
        version -> Integer,
        secure -> Bool,
        value -> Nullable<Text>,
        current -> Bool,
        changed_by -> Text,
        changed_at -> Timestamp,
        restored_from -> Nullable<Integer>,
    }
}

diesel::table! {
    vault_settings (tenant_id) {
        tenant_id -> Text,
        require_reveal_reason -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(credentials -> credential_types (type_id));
diesel::joinable!(credential_values -> credentials (credential_id));
diesel::allow_tables_to_appear_in_same_query!(
    vault_meta,
    vault_keys,
    companies,
    credential_types,
    credentials,
    credential_values,
    vault_settings,
);
