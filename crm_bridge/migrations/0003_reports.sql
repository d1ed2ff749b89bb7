-- Historical reports (crm_bridge/reports.py) read ACD calls by the time they were queued:
-- all queues of a window, or one queue's.
CREATE INDEX interactions_queued ON interactions (queued_at) WHERE queue IS NOT NULL;
CREATE INDEX interactions_queue_queued ON interactions (queue, queued_at);
