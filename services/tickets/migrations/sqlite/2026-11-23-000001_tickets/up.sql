-- Tickets: products, companies, tickets with their comments, history and SLA ledger, the
-- read model of identity's users, and idempotency keys.

CREATE TABLE products (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    channels TEXT NOT NULL,
    default_assignee_id TEXT,
    lead_id TEXT,
    sla_policy TEXT NOT NULL,
    triage_rules TEXT,
    triage_rules_version BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX products_tenant_key ON products (tenant_id, key);
CREATE INDEX products_tenant_name ON products (tenant_id, name);

CREATE TABLE companies (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    identifier TEXT NOT NULL,
    email_domains TEXT NOT NULL,
    address TEXT,
    notes TEXT NOT NULL,
    external_ref TEXT,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX companies_tenant_identifier ON companies (tenant_id, identifier);
CREATE INDEX companies_tenant_name ON companies (tenant_id, name);

-- One row per email domain, so a requester's domain finds its company by index.
CREATE TABLE company_domains (
    tenant_id TEXT NOT NULL,
    domain TEXT NOT NULL,
    company_id TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, domain)
);
CREATE INDEX company_domains_company ON company_domains (company_id);

-- The next ticket number of each tenant.
CREATE TABLE ticket_counters (
    tenant_id TEXT PRIMARY KEY,
    last_number BIGINT NOT NULL
);

CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    number BIGINT NOT NULL,
    key TEXT NOT NULL,
    product_id TEXT NOT NULL REFERENCES products (id),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    requester_name TEXT NOT NULL,
    requester_email TEXT NOT NULL,
    company_id TEXT,
    channel TEXT NOT NULL,
    ticket_type TEXT NOT NULL,
    tags TEXT NOT NULL,
    status TEXT NOT NULL,
    severity_rank INTEGER NOT NULL,
    assignee_id TEXT,
    triage TEXT NOT NULL,
    severity_overridden INTEGER NOT NULL DEFAULT 0,
    escalation_level INTEGER NOT NULL DEFAULT 0,
    escalated_to TEXT,
    comments_count INTEGER NOT NULL DEFAULT 0,
    first_response_at TIMESTAMP,
    resolved_at TIMESTAMP,
    closed_at TIMESTAMP,
    -- The earliest SLA target still open and not breached while the clock runs (the rest of
    -- the SLA state is in ticket_sla); sorts lists and drives the breach scheduler.
    sla_due_at TIMESTAMP,
    created_by TEXT NOT NULL,
    deleted_at TIMESTAMP,
    deleted_by TEXT,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX tickets_tenant_number ON tickets (tenant_id, number);
CREATE UNIQUE INDEX tickets_tenant_key ON tickets (tenant_id, key);
-- Every list is "live tickets of a tenant, filtered, in some order": one index per common
-- filter, each ending in the default order (created_at, id) so a first page is an index scan.
CREATE INDEX tickets_tenant_created ON tickets (tenant_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tickets_tenant_updated ON tickets (tenant_id, updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tickets_tenant_status ON tickets (tenant_id, status, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tickets_tenant_product ON tickets (tenant_id, product_id, status, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tickets_tenant_assignee ON tickets (tenant_id, assignee_id, status, created_at) WHERE deleted_at IS NULL;
CREATE INDEX tickets_tenant_severity ON tickets (tenant_id, severity_rank, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tickets_tenant_company ON tickets (tenant_id, company_id, created_at) WHERE deleted_at IS NULL;
CREATE INDEX tickets_tenant_requester ON tickets (tenant_id, requester_email, created_at) WHERE deleted_at IS NULL;
CREATE INDEX tickets_tenant_sla_due ON tickets (tenant_id, sla_due_at) WHERE deleted_at IS NULL;
-- The breach scheduler: running clocks by due time, across tenants.
CREATE INDEX tickets_sla_due ON tickets (sla_due_at) WHERE sla_due_at IS NOT NULL AND deleted_at IS NULL;

-- The SLA clock of each ticket (see domain/sla.rs).
CREATE TABLE ticket_sla (
    ticket_id TEXT PRIMARY KEY REFERENCES tickets (id),
    tenant_id TEXT NOT NULL,
    running_since TIMESTAMP,
    elapsed_seconds BIGINT NOT NULL,
    paused_since TIMESTAMP,
    paused_seconds BIGINT NOT NULL,
    first_response_due_at TIMESTAMP,
    resolution_due_at TIMESTAMP,
    first_response_breached_at TIMESTAMP,
    resolution_breached_at TIMESTAMP
);

CREATE TABLE ticket_tags (
    tenant_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    PRIMARY KEY (tenant_id, tag, ticket_id)
);
CREATE INDEX ticket_tags_ticket ON ticket_tags (ticket_id);

CREATE TABLE ticket_comments (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    author_kind TEXT NOT NULL,
    author_id TEXT,
    author_name TEXT,
    body TEXT NOT NULL,
    visibility TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ticket_comments_ticket ON ticket_comments (ticket_id, created_at, id);

CREATE TABLE ticket_history (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    actor TEXT NOT NULL,
    field TEXT NOT NULL,
    from_value TEXT,
    to_value TEXT,
    note TEXT,
    at TIMESTAMP NOT NULL
);
CREATE INDEX ticket_history_ticket ON ticket_history (ticket_id, at, id);

CREATE TABLE sla_ledger (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    kind TEXT NOT NULL,
    target TEXT,
    detail TEXT,
    at TIMESTAMP NOT NULL
);
CREATE INDEX sla_ledger_ticket ON sla_ledger (ticket_id, at, id);

-- Identity's users as tickets needs them (who may be assigned), fed by user.* events.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    permissions TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE idempotency_keys (
    tenant_id TEXT NOT NULL,
    caller TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, caller, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Full-text search (FTS5). Rows are keyed by the rowid of the ticket or comment, so the
-- triggers update them by key; tickets filter by tenant on their own table.
CREATE VIRTUAL TABLE ticket_search USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE comment_search USING fts5(ticket_id UNINDEXED, visibility UNINDEXED, body, tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER tickets_search_insert AFTER INSERT ON tickets BEGIN
    INSERT INTO ticket_search (rowid, body) VALUES (new.rowid, new.title || ' ' || new.description);
END;
CREATE TRIGGER tickets_search_update AFTER UPDATE OF title, description ON tickets BEGIN
    DELETE FROM ticket_search WHERE rowid = old.rowid;
    INSERT INTO ticket_search (rowid, body) VALUES (new.rowid, new.title || ' ' || new.description);
END;
CREATE TRIGGER comments_search_insert AFTER INSERT ON ticket_comments BEGIN
    INSERT INTO comment_search (rowid, ticket_id, visibility, body) VALUES (new.rowid, new.ticket_id, new.visibility, new.body);
END;
