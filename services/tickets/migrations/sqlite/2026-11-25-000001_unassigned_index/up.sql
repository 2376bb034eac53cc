-- The unassigned queue (`assigneeId=none`, usually with a severity) is the triage view: its
-- pages and counts come from this index alone instead of checking every ticket's assignee.
CREATE INDEX tickets_tenant_unassigned ON tickets (tenant_id, severity_rank, created_at, id) WHERE deleted_at IS NULL AND assignee_id IS NULL;
