-- One change-event trigger function per table instead of one generic function told its columns
-- by name: the generic one turned every written row into JSONB (`to_jsonb(NEW)`) to read two
-- columns out of it. Reading them straight off the row costs 0.072 ms a row instead of 0.115
-- (EXPLAIN ANALYZE over 200 orders, three times each), and a change writes three rows or more.
-- The events are the same: kind, op, customer and the entity's id as text, rows without a
-- customer skipped, one empty notification per transaction.
--
-- change_event_sources lists every table that emits, so the down migration can rebuild the
-- generic triggers from the same list.
CREATE TABLE change_event_sources (
    table_name      TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    customer_column TEXT NOT NULL,
    entity_column   TEXT NOT NULL,
    -- History tables emit on INSERT only (their rows are never changed).
    events          TEXT NOT NULL
);
INSERT INTO change_event_sources VALUES
    ('customers',                    'profile',   'id',                   'id',         'INSERT OR UPDATE OR DELETE'),
    ('orders',                       'order',     'customer_id',          'id',         'INSERT OR UPDATE OR DELETE'),
    ('order_items',                  'order',     'customer_id',          'order_id',   'INSERT OR UPDATE OR DELETE'),
    ('loyalty_accounts',             'loyalty',   'customer_id',          'customer_id','INSERT OR UPDATE OR DELETE'),
    ('loyalty_transactions',         'loyalty',   'customer_id',          'id',         'INSERT OR UPDATE OR DELETE'),
    ('referrals',                    'loyalty',   'referrer_customer_id', 'id',         'INSERT OR UPDATE OR DELETE'),
    ('marketing_consents',           'marketing', 'customer_id',          'channel',    'INSERT OR UPDATE OR DELETE'),
    ('campaign_events',              'marketing', 'customer_id',          'id',         'INSERT OR UPDATE OR DELETE'),
    ('email_outbox',                 'marketing', 'customer_id',          'id',         'INSERT OR UPDATE OR DELETE'),
    ('support_tickets',              'ticket',    'customer_id',          'id',         'INSERT OR UPDATE OR DELETE'),
    ('web_sessions',                 'session',   'customer_id',          'id',         'INSERT OR UPDATE OR DELETE'),
    ('category_views',               'session',   'customer_id',          'id',         'INSERT OR UPDATE OR DELETE'),
    ('customer_notes',               'note',      'customer_id',          'id',         'INSERT OR UPDATE OR DELETE'),
    ('customer_tag_assignments',     'tag',       'customer_id',          'tag_id',     'INSERT OR UPDATE OR DELETE'),
    ('customer_segment_assignments', 'segment',   'customer_id',          'segment_id', 'INSERT OR UPDATE OR DELETE'),
    ('customer_health_scores',       'profile',   'customer_id',          'id',         'INSERT'),
    ('customer_churn_risks',         'profile',   'customer_id',          'id',         'INSERT');

DO $migration$
DECLARE
    t change_event_sources;
BEGIN
    FOR t IN SELECT * FROM change_event_sources LOOP
        EXECUTE format($fn$
            CREATE FUNCTION %1$I() RETURNS trigger LANGUAGE plpgsql AS $body$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    IF OLD.%2$I IS NULL THEN
                        RETURN NULL;
                    END IF;
                    INSERT INTO change_events (customer_id, kind, op, entity_id)
                    VALUES (OLD.%2$I, %3$L, 'deleted', OLD.%4$I::text);
                ELSE
                    IF NEW.%2$I IS NULL THEN
                        RETURN NULL;
                    END IF;
                    INSERT INTO change_events (customer_id, kind, op, entity_id)
                    VALUES (NEW.%2$I, %3$L, CASE TG_OP WHEN 'INSERT' THEN 'created' ELSE 'updated' END,
                            NEW.%4$I::text);
                END IF;
                -- An empty payload lets Postgres fold a transaction's notifications into one wake-up.
                PERFORM pg_notify('c360_change_events', '');
                RETURN NULL;
            END $body$
        $fn$, 'c360_emit_' || t.table_name, t.customer_column, t.kind, t.entity_column);
        EXECUTE format('DROP TRIGGER %I ON %I', t.table_name || '_change', t.table_name);
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I FOR EACH ROW EXECUTE FUNCTION %I()',
                       t.table_name || '_change', t.events, t.table_name, 'c360_emit_' || t.table_name);
    END LOOP;
END $migration$;

DROP FUNCTION c360_emit_change();
