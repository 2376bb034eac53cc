DROP INDEX tickets_tenant_sla_due;
CREATE INDEX tickets_tenant_sla_due ON tickets (tenant_id, sla_due_at) WHERE deleted_at IS NULL;
