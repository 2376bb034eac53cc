-- How long a ticket waited for its first public agent reply and for its resolution, in whole
-- seconds from creation, kept with its SLA state: the statistics take the medians in SQL,
-- the same way on both backends, instead of loading every ticket of the period. (SQLite's
-- date functions keep milliseconds, which is all the rounding below needs; tickets changed
-- from now on get the figure from the service.)
ALTER TABLE ticket_sla ADD COLUMN first_response_seconds BIGINT;
ALTER TABLE ticket_sla ADD COLUMN resolution_seconds BIGINT;
UPDATE ticket_sla SET
  first_response_seconds = (SELECT CASE WHEN t.first_response_at IS NOT NULL
    THEN MAX(0, CAST(ROUND((julianday(t.first_response_at) - julianday(t.created_at)) * 86400000) AS INTEGER) / 1000) END
    FROM tickets t WHERE t.id = ticket_sla.ticket_id),
  resolution_seconds = (SELECT CASE WHEN t.resolved_at IS NOT NULL
    THEN MAX(0, CAST(ROUND((julianday(t.resolved_at) - julianday(t.created_at)) * 86400000) AS INTEGER) / 1000) END
    FROM tickets t WHERE t.id = ticket_sla.ticket_id);
