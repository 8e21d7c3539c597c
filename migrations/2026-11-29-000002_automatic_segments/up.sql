-- The automatic segments (kept by `customer360 segments recompute` and per customer when its
-- data changes) and the RFM quintile cut points the last full pass computed.

INSERT INTO customer_segments (id, name, description, kind, rule) VALUES
    (1,  'Champions',           'Bought recently, often, and spent the most', 'automatic', '{"type":"rfm","segment":"Champions"}'),
    (2,  'Loyal',               'Order often and fairly recently', 'automatic', '{"type":"rfm","segment":"Loyal"}'),
    (3,  'Potential Loyalists', 'Recent customers with a few orders', 'automatic', '{"type":"rfm","segment":"Potential Loyalists"}'),
    (4,  'New Customers',       'First order was recent', 'automatic', '{"type":"rfm","segment":"New Customers"}'),
    (5,  'Can''t Lose Them',    'Were among the best, have not ordered in a long time', 'automatic', '{"type":"rfm","segment":"Can''t Lose Them"}'),
    (6,  'At Risk',             'Ordered often, but not for a while', 'automatic', '{"type":"rfm","segment":"At Risk"}'),
    (7,  'Hibernating',         'Few orders, long ago', 'automatic', '{"type":"rfm","segment":"Hibernating"}'),
    (8,  'Lost',                'Lowest recency and frequency', 'automatic', '{"type":"rfm","segment":"Lost"}'),
    (9,  'Need Attention',      'Average on every dimension', 'automatic', '{"type":"rfm","segment":"Need Attention"}'),
    (10, 'VIP',                 'Lifetime value of $10,000 or more', 'automatic', '{"type":"rule","lifetime_value_cents_at_least":1000000}'),
    (11, 'New',                 'Signed up in the last 30 days', 'automatic', '{"type":"rule","signed_up_within_days":30}'),
    (12, 'Dormant',             'Has ordered, but not in 180 days', 'automatic', '{"type":"rule","no_order_for_days":180}');
-- Manual segments get ids from 100 on, so the automatic ones keep theirs.
SELECT setval(pg_get_serial_sequence('customer_segments', 'id'), 100, false);

CREATE TABLE segment_thresholds (
    id          BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    -- domain::segments::Quintiles as JSON.
    quintiles   JSONB NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
