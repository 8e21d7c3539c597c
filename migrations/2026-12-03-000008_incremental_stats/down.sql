DROP TRIGGER orders_stats_deleted ON orders;
DROP TRIGGER orders_stats_lost ON orders;
DROP TRIGGER orders_stats_gained ON orders;
DROP TRIGGER orders_stats_inserted ON orders;
DROP FUNCTION c360_orders_stats_remove();
DROP FUNCTION c360_orders_stats_add();

CREATE FUNCTION c360_orders_stats_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        -- A deleted customer's stats row is gone with it (cascade); nothing to refresh.
        IF EXISTS (SELECT 1 FROM customers WHERE id = OLD.customer_id) THEN
            PERFORM c360_refresh_customer_stats(OLD.customer_id);
        END IF;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.customer_id <> OLD.customer_id) THEN
        PERFORM c360_refresh_customer_stats(NEW.customer_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER orders_stats AFTER INSERT OR UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION c360_orders_stats_trigger();
