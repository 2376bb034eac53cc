-- The vault: its keys, credential types, credentials with their field values (every version
-- kept), per-tenant settings and the read model of tickets' companies.

-- One row: the check value sealed with the root key when the vault was created.
CREATE TABLE vault_meta (
    id INTEGER PRIMARY KEY,
    check_value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- KEK versions, wrapped by the root key; `wrapped` is cleared when a version retires.
CREATE TABLE vault_keys (
    version INTEGER PRIMARY KEY,
    wrapped TEXT,
    created_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP
);

CREATE TABLE companies (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    identifier TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX companies_tenant ON companies (tenant_id);

CREATE TABLE credential_types (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    icon TEXT,
    permission_scope TEXT,
    fields TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX credential_types_tenant_name ON credential_types (tenant_id, name_lower);

CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    type_id TEXT NOT NULL REFERENCES credential_types (id) ON DELETE CASCADE,
    company_id TEXT NOT NULL,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    notes TEXT NOT NULL,
    data_key TEXT NOT NULL,
    kek_version INTEGER NOT NULL,
    version BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX credentials_tenant_name ON credentials (tenant_id, name_lower, id);
CREATE INDEX credentials_tenant_company ON credentials (tenant_id, company_id, name_lower);
CREATE INDEX credentials_tenant_type ON credentials (tenant_id, type_id);
CREATE INDEX credentials_kek ON credentials (kek_version);

-- Every version of every field value; secure ones sealed under the credential's data key.
-- `current` marks the live version of each field; a NULL value is a cleared field.
CREATE TABLE credential_values (
    credential_id TEXT NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    field_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    secure BOOLEAN NOT NULL,
    value TEXT,
    current BOOLEAN NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at TIMESTAMP NOT NULL,
    restored_from INTEGER,
    PRIMARY KEY (credential_id, field_id, version)
);
CREATE INDEX credential_values_current ON credential_values (credential_id) WHERE current;

CREATE TABLE vault_settings (
    tenant_id TEXT PRIMARY KEY,
    require_reveal_reason BOOLEAN NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
