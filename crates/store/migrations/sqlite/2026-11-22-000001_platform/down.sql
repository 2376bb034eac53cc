DROP TABLE bus_messages;
DROP TABLE bus_bindings;
DROP TABLE processed_events;
DROP TABLE outbox;
