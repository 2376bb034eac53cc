-- Wake the relays of other replicas when outbox rows commit. A statement trigger does what a
-- `NOTIFY` after each insert did, without the extra round trip per transaction; PostgreSQL
-- delivers the notification at commit and drops it on rollback, as before.
CREATE FUNCTION fleetdesk_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fleetdesk_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION fleetdesk_outbox_notify();
