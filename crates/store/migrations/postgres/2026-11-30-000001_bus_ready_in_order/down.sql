DROP INDEX bus_messages_ready;
CREATE INDEX bus_messages_ready ON bus_messages (queue, dead, available_at, seq);
ALTER TABLE bus_messages RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold,
    autovacuum_analyze_scale_factor, autovacuum_analyze_threshold);
