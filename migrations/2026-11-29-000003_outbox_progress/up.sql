-- Outbox progress per event: a transaction that took its sequence number early but committed
-- late must still be published, which a single high-water mark would skip.
ALTER TABLE change_events ADD COLUMN published_at TIMESTAMPTZ;
CREATE INDEX change_events_pending ON change_events (seq) WHERE published_at IS NULL;
ALTER TABLE outbox_relay_state ADD COLUMN published_total BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox_relay_state ADD COLUMN leader TEXT;
