DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION fleetdesk_outbox_notify();
