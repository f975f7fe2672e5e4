-- What the outbox held before the notification gateway existed (0005) is history, not
-- news: archived, never sent. Only what was written before 0005 was applied: anything
-- newer is a real notice the dispatcher is to deliver.
UPDATE notifications SET sent_at = created_at, receipt = 'pre-gateway'
 WHERE sent_at IS NULL
   AND created_at < (SELECT applied_at FROM schema_migrations
                      WHERE version = '0005_partner_delivery');
