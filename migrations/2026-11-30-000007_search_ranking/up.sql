-- Ranking by relevance reads, for each way a text can match, only its best few rows (see
-- `Arm` in src/db/search.rs): prefixes of names and emails from these pattern indexes (the
-- trigram index cannot tell `example%` from `%example%`, and every seeded email contains
-- `example`), and matches from shortest to longest column from the length indexes, so a query
-- matching every customer stops after its first page of rows instead of scoring all of them.
CREATE INDEX customer_search_name_prefix ON customer_search (name_lc text_pattern_ops);
CREATE INDEX customer_search_email_prefix ON customer_search (email_lc text_pattern_ops);
CREATE INDEX customer_search_name_length ON customer_search (octet_length(name_lc), customer_id DESC);
CREATE INDEX customer_search_email_length ON customer_search (octet_length(email_lc), customer_id DESC);
