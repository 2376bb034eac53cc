-- A queue's ready messages are taken in publishing order (seq), the first few of however many
-- wait. The old index ordered them by availability first, so each take read every ready row of
-- the queue and sorted them.
DROP INDEX bus_messages_ready;
CREATE INDEX bus_messages_ready ON bus_messages (queue, dead, seq);
