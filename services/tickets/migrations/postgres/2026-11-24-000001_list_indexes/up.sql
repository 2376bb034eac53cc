-- `sort=slaDue` orders tickets with a due time first, then by due time: index exactly that.
DROP INDEX tickets_tenant_sla_due;
CREATE INDEX tickets_tenant_sla_due ON tickets (tenant_id, (sla_due_at IS NULL), sla_due_at, id) WHERE deleted_at IS NULL;
