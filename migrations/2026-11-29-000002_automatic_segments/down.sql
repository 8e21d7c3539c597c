DROP TABLE IF EXISTS segment_thresholds;
DELETE FROM customer_segments WHERE kind = 'automatic';
