-- No NOTIFY on outbox inserts. PostgreSQL serialises the commits of every notifying
-- transaction in the cluster (it holds one global lock from queueing the notification to the
-- end of the commit, including its WAL flush), so creates could not share a flush: 1,200
-- creates/s with the trigger, 1,400 without (8 connections), and the gap grows with more.
-- The writing process wakes its own relay at commit (`Db::written`); rows another process
-- wrote are found by the relay's poll.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION fleetdesk_outbox_notify();
