-- A GIN index queues new entries in a pending list (up to 4 MB by default) that every search
-- reads in full until a vacuum merges it: with tickets raised all day that is up to 500 pages
-- read by each search, several milliseconds even for a word that matches one ticket. A small
-- list costs each search little; the create that fills it merges it, a few milliseconds once
-- in every few hundred creates.
ALTER INDEX tickets_search SET (gin_pending_list_limit = 256);
ALTER INDEX ticket_comments_search SET (gin_pending_list_limit = 256);
