ALTER TABLE ticket_sla DROP COLUMN first_response_seconds;
ALTER TABLE ticket_sla DROP COLUMN resolution_seconds;
