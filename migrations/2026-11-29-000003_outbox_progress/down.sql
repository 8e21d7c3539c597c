ALTER TABLE outbox_relay_state DROP COLUMN leader;
ALTER TABLE outbox_relay_state DROP COLUMN published_total;
DROP INDEX change_events_pending;
ALTER TABLE change_events DROP COLUMN published_at;
