DROP INDEX bus_messages_ready;
CREATE INDEX bus_messages_ready ON bus_messages (queue, dead, available_at, seq);
