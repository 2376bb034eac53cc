-- How long a ticket waited for its first public agent reply and for its resolution, in whole
-- seconds from creation, kept with its SLA state: the statistics take the medians in SQL,
-- the same way on both backends, instead of loading every ticket of the period.
ALTER TABLE ticket_sla ADD COLUMN first_response_seconds BIGINT, ADD COLUMN resolution_seconds BIGINT;
UPDATE ticket_sla SET
  first_response_seconds = CASE WHEN t.first_response_at IS NOT NULL
    THEN GREATEST(0, FLOOR(EXTRACT(EPOCH FROM t.first_response_at - t.created_at)))::bigint END,
  resolution_seconds = CASE WHEN t.resolved_at IS NOT NULL
    THEN GREATEST(0, FLOOR(EXTRACT(EPOCH FROM t.resolved_at - t.created_at)))::bigint END
FROM tickets t
WHERE t.id = ticket_sla.ticket_id AND (t.first_response_at IS NOT NULL OR t.resolved_at IS NOT NULL);
