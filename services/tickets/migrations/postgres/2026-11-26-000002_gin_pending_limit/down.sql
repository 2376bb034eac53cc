ALTER INDEX tickets_search RESET (gin_pending_list_limit);
ALTER INDEX ticket_comments_search RESET (gin_pending_list_limit);
