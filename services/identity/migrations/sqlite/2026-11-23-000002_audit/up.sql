-- The audit log: one row per event of any service, written by identity's consumer of `#`.
-- The id is the event id, so an event can never be recorded twice.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    tenant_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    summary TEXT NOT NULL,
    source TEXT NOT NULL,
    trace_id TEXT,
    occurred_at TIMESTAMP NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, occurred_at, id);
CREATE INDEX audit_log_entity ON audit_log (tenant_id, entity_type, entity_id, occurred_at);
CREATE INDEX audit_log_actor ON audit_log (tenant_id, actor, occurred_at);
CREATE INDEX audit_log_action ON audit_log (tenant_id, action, occurred_at);
