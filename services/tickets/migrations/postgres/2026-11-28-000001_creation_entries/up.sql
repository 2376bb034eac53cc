-- A ticket's first history entry (`created`) and its SLA clock's first start are read off the
-- ticket itself (store::tickets::created_entry, start_entry): a create writes two rows fewer.
-- The rows stored before are those entries; they go, so nothing is listed twice.
DELETE FROM ticket_history WHERE field = 'created';
DELETE FROM sla_ledger WHERE kind = 'start'
  AND EXISTS (SELECT 1 FROM tickets t WHERE t.id = sla_ledger.ticket_id AND t.created_at = sla_ledger.at);
