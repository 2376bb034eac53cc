ALTER TABLE ticket_sla DROP COLUMN first_response_seconds, DROP COLUMN resolution_seconds;
