DO $migration$
DECLARE
    t change_event_catalogs;
BEGIN
    FOR t IN SELECT * FROM change_event_catalogs LOOP
        EXECUTE format('DROP TRIGGER %I ON %I', t.table_name || '_catalog_change', t.table_name);
        EXECUTE format('DROP FUNCTION %I()', 'c360_emit_' || t.table_name || '_catalog');
    END LOOP;
END $migration$;
DROP TABLE change_event_catalogs;
