DROP VIEW IF EXISTS customer_revenue;
DROP TABLE IF EXISTS change_events, outbox_relay_state, customer_stats, idempotency_keys, email_outbox,
    audit_log, customer_churn_risks, customer_health_scores, customer_segment_assignments,
    customer_segments, customer_tag_assignments, customer_tags, customer_notes, category_views,
    web_sessions, support_tickets, campaign_events, campaigns, marketing_consents, referrals,
    loyalty_transactions, loyalty_accounts, order_items, orders, product_categories, customers CASCADE;
DROP FUNCTION IF EXISTS c360_emit_change(), c360_customers_stats_trigger(), c360_orders_stats_trigger(),
    c360_refresh_customer_stats(BIGINT);
DROP TYPE IF EXISTS order_status, loyalty_tier, consent_channel, campaign_event_type, ticket_status,
    ticket_priority, device_type, note_visibility, segment_kind, assignment_source, churn_risk_level,
    referral_status, email_status;
