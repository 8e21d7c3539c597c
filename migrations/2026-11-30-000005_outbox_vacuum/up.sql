-- The outbox takes an insert and an update per event: vacuum it after a small share of
-- changes (not the default 20 %), so the pending index stays small under sustained load.
ALTER TABLE change_events SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05
);
