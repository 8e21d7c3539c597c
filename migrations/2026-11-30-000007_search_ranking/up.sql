-- A broad text search (`q=example`: every customer) reads only the first rows of an order it
-- can walk, instead of reading, scoring and sorting every match.
--
-- Ranking by relevance reads, for each way a text can match, only its best few rows (see `Arm`
-- in src/db/search.rs): prefixes of names and emails from the pattern indexes (the trigram
-- index cannot tell `example%` from `%example%`, and every seeded email contains `example`),
-- and matches from shortest to longest column from the length indexes.
CREATE INDEX customer_search_name_prefix ON customer_search (name_lc text_pattern_ops);
CREATE INDEX customer_search_email_prefix ON customer_search (email_lc text_pattern_ops);
CREATE INDEX customer_search_name_length ON customer_search (octet_length(name_lc), customer_id DESC);
CREATE INDEX customer_search_email_length ON customer_search (octet_length(email_lc), customer_id DESC);

-- Sorting by name or last order walks these with the text as a filter (Postgres picks the walk
-- when its statistics expect many matches): the pattern index above cannot give the collation's
-- order, and sorting by last order puts customers without one last through `coalesce`.
CREATE INDEX customer_search_name_order ON customer_search (name_lc, customer_id);
CREATE INDEX customer_stats_last_order_or_never
    ON customer_stats ((coalesce(last_order_at, '-infinity'::timestamptz)), customer_id);
