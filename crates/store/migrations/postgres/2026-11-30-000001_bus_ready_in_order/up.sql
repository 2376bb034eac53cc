-- A queue's ready messages are taken in publishing order (seq), the first few of however many
-- wait. The old index ordered them by availability first, so each take read every ready row of
-- the queue and sorted them.
DROP INDEX bus_messages_ready;
CREATE INDEX bus_messages_ready ON bus_messages (queue, dead, seq);
-- Rows live here for milliseconds: vacuum and analyze the table after every few thousand
-- deletes rather than after a fifth of it, so that takes do not wade through dead entries
-- and the planner knows how long a queue has grown.
ALTER TABLE bus_messages SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000);
