-- The tenant's next ticket number in one statement. Each tenant has a sequence named after the
-- first 16 bytes of the SHA-256 of its id (the name the service used to make itself), made on
-- the tenant's first ticket and starting after its highest number. `nextval` takes no lock
-- that lasts until commit, so creates commit in parallel; a create that rolls back leaves a gap.
CREATE FUNCTION ticket_number(tenant TEXT) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    seq TEXT := 'ticket_numbers_' || left(encode(sha256(convert_to(tenant, 'UTF8')), 'hex'), 32);
    first BIGINT;
BEGIN
    IF to_regclass(seq) IS NULL THEN
        SELECT COALESCE(MAX(number), 0) + 1 INTO first FROM tickets WHERE tenant_id = tenant;
        BEGIN
            EXECUTE format('CREATE SEQUENCE %I START WITH %s', seq, first);
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
            NULL; -- a concurrent first ticket made it
        END;
    END IF;
    RETURN nextval(seq::regclass);
END
$$;
