-- The entries back as rows, with the ticket's id as theirs (as they are read), the start
-- without the severity it began at.
INSERT INTO ticket_history (id, tenant_id, ticket_id, actor, field, from_value, to_value, note, at)
  SELECT id, tenant_id, id, created_by, 'created', NULL, key, NULL, created_at FROM tickets;
INSERT INTO sla_ledger (id, tenant_id, ticket_id, kind, target, detail, at)
  SELECT id, tenant_id, id, 'start', NULL, NULL, created_at FROM tickets;
