DROP INDEX tickets_tenant_unassigned;
