-- Back to migration 9's functions: a moved row emits for the customer it joined only.
DO $migration$
DECLARE
    t change_event_sources;
BEGIN
    FOR t IN SELECT * FROM change_event_sources LOOP
        EXECUTE format($fn$
            CREATE OR REPLACE FUNCTION %1$I() RETURNS trigger LANGUAGE plpgsql AS $body$
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
    END LOOP;
END $migration$;
