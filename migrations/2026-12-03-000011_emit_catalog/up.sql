-- A catalog row that dashboards show by name (a campaign, a tag, a segment, a product category)
-- could be renamed in SQL without any event, so every dashboard showing it kept the old name
-- until some other change reloaded that slice. Now an update that changes what the views show
-- of such a row emits an 'updated' event for every customer linked to it, of the kind whose
-- slices show it, with the catalog row named as the entity (`campaign:12`, `category:3`: not
-- to be taken for a linking row's id, and a name change no score reads, so the derived worker
-- skips it). Deleting a campaign, tag or segment cascades to the linking rows, whose own
-- triggers emit; a product category that items or views use cannot be deleted. A rename
-- touches every linked customer once (DISTINCT) in the renaming transaction; renames are rare,
-- so the linking tables are scanned rather than given indexes every platform write would pay
-- for.
CREATE TABLE change_event_catalogs (
    table_name TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    -- The entity is this, a colon and the row's id.
    entity     TEXT NOT NULL,
    -- A query giving (customer_id, catalog_id) for every customer linked to a catalog row.
    links      TEXT NOT NULL,
    -- The columns the views show.
    shown      TEXT[] NOT NULL
);
INSERT INTO change_event_catalogs VALUES
    ('campaigns', 'marketing', 'campaign',
     'SELECT customer_id, campaign_id AS catalog_id FROM campaign_events', '{name,channel}'),
    ('customer_tags', 'tag', 'tag',
     'SELECT customer_id, tag_id AS catalog_id FROM customer_tag_assignments', '{name,color}'),
    ('customer_segments', 'segment', 'segment',
     'SELECT customer_id, segment_id AS catalog_id FROM customer_segment_assignments', '{name,kind}'),
    -- Category names appear in the analytics slice only, which 'session' events reload.
    ('product_categories', 'session', 'category',
     'SELECT customer_id, category_id AS catalog_id FROM order_items
      UNION ALL SELECT customer_id, category_id FROM category_views', '{name}');

DO $migration$
DECLARE
    t change_event_catalogs;
BEGIN
    FOR t IN SELECT * FROM change_event_catalogs LOOP
        EXECUTE format($fn$
            CREATE FUNCTION %1$I() RETURNS trigger LANGUAGE plpgsql AS $body$
            BEGIN
                INSERT INTO change_events (customer_id, kind, op, entity_id)
                SELECT DISTINCT l.customer_id, %2$L, 'updated', %6$L || ':' || n.id
                FROM new_rows n
                JOIN old_rows o ON o.id = n.id
                JOIN (%3$s) l ON l.catalog_id = n.id
                WHERE ROW(%4$s) IS DISTINCT FROM ROW(%5$s);
                IF FOUND THEN
                    PERFORM pg_notify('c360_change_events', '');
                END IF;
                RETURN NULL;
            END $body$
        $fn$,
            'c360_emit_' || t.table_name || '_catalog', t.kind, t.links,
            (SELECT string_agg(format('n.%I', c), ', ') FROM unnest(t.shown) c),
            (SELECT string_agg(format('o.%I', c), ', ') FROM unnest(t.shown) c),
            t.entity);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
             FOR EACH STATEMENT EXECUTE FUNCTION %I()',
            t.table_name || '_catalog_change', t.table_name, 'c360_emit_' || t.table_name || '_catalog');
    END LOOP;
END $migration$;
