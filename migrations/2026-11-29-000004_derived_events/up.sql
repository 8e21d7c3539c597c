-- A new health or churn history row changes what dashboards show (the trend), so it is a
-- change event too: kind 'profile', which recomputes health and churn. The derived worker
-- only writes a row when a value changed, so this cannot loop.
CREATE TRIGGER customer_health_scores_change AFTER INSERT ON customer_health_scores
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('profile', 'customer_id', 'id');
CREATE TRIGGER customer_churn_risks_change AFTER INSERT ON customer_churn_risks
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('profile', 'customer_id', 'id');
