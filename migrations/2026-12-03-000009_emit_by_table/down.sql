-- TG_ARGV: [0] event kind, [1] column holding the customer id, [2] column holding the entity id.
CREATE FUNCTION c360_emit_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r    JSONB;
    cid  BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
    cid := (r ->> TG_ARGV[1])::bigint;
    IF cid IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO change_events (customer_id, kind, op, entity_id)
    VALUES (cid, TG_ARGV[0],
            CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END,
            r ->> TG_ARGV[2]);
    -- An empty payload lets Postgres fold a transaction's notifications into one wake-up.
    PERFORM pg_notify('c360_change_events', '');
    RETURN NULL;
END $$;

DO $migration$
DECLARE
    t change_event_sources;
BEGIN
    FOR t IN SELECT * FROM change_event_sources LOOP
        EXECUTE format('DROP TRIGGER %I ON %I', t.table_name || '_change', t.table_name);
        EXECUTE format('DROP FUNCTION %I()', 'c360_emit_' || t.table_name);
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I FOR EACH ROW EXECUTE FUNCTION c360_emit_change(%L, %L, %L)',
                       t.table_name || '_change', t.events, t.table_name, t.kind, t.customer_column,
                       t.entity_column);
    END LOOP;
END $migration$;

DROP TABLE change_event_sources;
