-- Tables every service database carries: the transactional outbox, the consumer
-- idempotency record, and the in-process bus (used only by the one-binary mode).

CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    aggregate TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    sensitive INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    claimed_by TEXT,
    claim_expires TIMESTAMP,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at TIMESTAMP
);
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX outbox_unsent_aggregate ON outbox (aggregate, seq) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;

CREATE TABLE processed_events (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    processed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_at ON processed_events (processed_at);

CREATE TABLE bus_bindings (
    queue TEXT NOT NULL,
    pattern TEXT NOT NULL,
    PRIMARY KEY (queue, pattern)
);

CREATE TABLE bus_messages (
    seq BIGSERIAL PRIMARY KEY,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at TIMESTAMP NOT NULL,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (queue, message_id)
);
CREATE INDEX bus_messages_ready ON bus_messages (queue, dead, available_at, seq);
