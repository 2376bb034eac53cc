DROP FUNCTION ticket_number(TEXT);
