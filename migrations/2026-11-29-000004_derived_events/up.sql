-- A new health or churn history row changes what dashboards show (the trend), so it is a
-- change event too: kind 'profile', with the history row's id as its entity. Hubs reload only
-- the health slice for it, and it does not feed the derived worker again
-- (`view::is_derived_history`), so it cannot loop.
CREATE TRIGGER customer_health_scores_change AFTER INSERT ON customer_health_scores
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('profile', 'customer_id', 'id');
CREATE TRIGGER customer_churn_risks_change AFTER INSERT ON customer_churn_risks
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('profile', 'customer_id', 'id');
