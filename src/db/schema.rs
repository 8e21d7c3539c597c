//! Diesel's view of the tables in `migrations/` (kept by hand; `diesel print-schema` writes the
//! same shape). Generated columns (`customers.phone_digits`) are read-only here.

diesel::table! {
    customers (id) {
        id -> Int8,
        name -> Text,
        email -> Text,
        phone -> Nullable<Text>,
        phone_digits -> Nullable<Text>,
        address_line -> Nullable<Text>,
        city -> Nullable<Text>,
        postal_code -> Nullable<Text>,
        country -> Nullable<Text>,
        birthday -> Nullable<Date>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    product_categories (id) {
        id -> Int4,
        name -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::enums::OrderStatusType;

    orders (id) {
        id -> Int8,
        customer_id -> Int8,
        order_number -> Text,
        status -> OrderStatusType,
        subtotal_cents -> Int8,
        discount_cents -> Int8,
        shipping_cents -> Int8,
        tax_cents -> Int8,
        total_cents -> Int8,
        currency -> Text,
        channel -> Text,
        placed_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    order_items (id) {
        id -> Int8,
        order_id -> Int8,
        customer_id -> Int8,
        category_id -> Int4,
        product_name -> Text,
        quantity -> Int4,
        unit_price_cents -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::enums::LoyaltyTierType;

    loyalty_accounts (customer_id) {
        customer_id -> Int8,
        tier -> LoyaltyTierType,
        balance -> Int8,
        lifetime_points -> Int8,
        referral_code -> Text,
        joined_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    loyalty_transactions (id) {
        id -> Int8,
        customer_id -> Int8,
        points -> Int4,
        reason -> Text,
        order_id -> Nullable<Int8>,
        expires_at -> Nullable<Timestamptz>,
        admin_id -> Nullable<Text>,
        admin_name -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::enums::ReferralStatusType;

    referrals (id) {
        id -> Int8,
        referrer_customer_id -> Int8,
        referred_customer_id -> Nullable<Int8>,
        referred_email -> Text,
        status -> ReferralStatusType,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::enums::ConsentChannelType;

    marketing_consents (customer_id, channel) {
        customer_id -> Int8,
        channel -> ConsentChannelType,
        opted_in -> Bool,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::enums::ConsentChannelType;

    campaigns (id) {
        id -> Int8,
        name -> Text,
        channel -> ConsentChannelType,
        started_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::enums::CampaignEventTypeType;

    campaign_events (id) {
        id -> Int8,
        campaign_id -> Int8,
        customer_id -> Int8,
        event_type -> CampaignEventTypeType,
        occurred_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::enums::{TicketPriorityType, TicketStatusType};

    support_tickets (id) {
        id -> Int8,
        customer_id -> Int8,
        subject -> Text,
        description -> Text,
        status -> TicketStatusType,
        priority -> TicketPriorityType,
        created_by -> Nullable<Text>,
        created_at -> Timestamptz,
        resolved_at -> Nullable<Timestamptz>,
        satisfaction -> Nullable<Int2>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::enums::DeviceTypeType;

    web_sessions (id) {
        id -> Int8,
        customer_id -> Int8,
        device -> DeviceTypeType,
        started_at -> Timestamptz,
        duration_seconds -> Int4,
        page_views -> Int4,
        source -> Text,
    }
}

diesel::table! {
    category_views (id) {
        id -> Int8,
        customer_id -> Int8,
        category_id -> Int4,
        session_id -> Nullable<Int8>,
        viewed_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::enums::NoteVisibilityType;

    customer_notes (id) {
        id -> Int8,
        customer_id -> Int8,
        author_id -> Text,
        author_name -> Text,
        body -> Text,
        visibility -> NoteVisibilityType,
        pinned -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    customer_tags (id) {
        id -> Int8,
        name -> Text,
        color -> Text,
        created_by -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    customer_tag_assignments (id) {
        id -> Int8,
        customer_id -> Int8,
        tag_id -> Int8,
        assigned_by -> Text,
        assigned_by_name -> Text,
        assigned_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::enums::SegmentKindType;

    customer_segments (id) {
        id -> Int8,
        name -> Text,
        description -> Text,
        kind -> SegmentKindType,
        rule -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::enums::AssignmentSourceType;

    customer_segment_assignments (id) {
        id -> Int8,
        customer_id -> Int8,
        segment_id -> Int8,
        source -> AssignmentSourceType,
        assigned_by -> Nullable<Text>,
        assigned_at -> Timestamptz,
    }
}

diesel::table! {
    customer_health_scores (id) {
        id -> Int8,
        customer_id -> Int8,
        score -> Int2,
        factors -> Jsonb,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::enums::ChurnRiskLevelType;

    customer_churn_risks (id) {
        id -> Int8,
        customer_id -> Int8,
        level -> ChurnRiskLevelType,
        reasons -> Jsonb,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        actor_id -> Text,
        actor_name -> Text,
        actor_role -> Text,
        action -> Text,
        customer_id -> Nullable<Int8>,
        details -> Jsonb,
        at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::enums::EmailStatusType;

    email_outbox (id) {
        id -> Int8,
        customer_id -> Int8,
        to_email -> Text,
        subject -> Text,
        body -> Text,
        status -> EmailStatusType,
        queued_by -> Text,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    idempotency_keys (actor_id, key) {
        actor_id -> Text,
        key -> Text,
        request_hash -> Text,
        response_code -> Int2,
        response_body -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    customer_stats (customer_id) {
        customer_id -> Int8,
        lifetime_value_cents -> Int8,
        order_count -> Int4,
        first_order_at -> Nullable<Timestamptz>,
        last_order_at -> Nullable<Timestamptz>,
        avg_order_value_cents -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    change_events (seq) {
        seq -> Int8,
        event_id -> Uuid,
        customer_id -> Int8,
        kind -> Text,
        op -> Text,
        entity_id -> Text,
        at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    outbox_relay_state (id) {
        id -> Bool,
        published_seq -> Int8,
        updated_at -> Timestamptz,
        published_total -> Int8,
        leader -> Nullable<Text>,
    }
}

diesel::joinable!(orders -> customers (customer_id));
diesel::joinable!(order_items -> orders (order_id));
diesel::joinable!(order_items -> product_categories (category_id));
diesel::joinable!(loyalty_accounts -> customers (customer_id));
diesel::joinable!(loyalty_transactions -> customers (customer_id));
diesel::joinable!(campaign_events -> campaigns (campaign_id));
diesel::joinable!(category_views -> product_categories (category_id));
diesel::joinable!(customer_tag_assignments -> customer_tags (tag_id));
diesel::joinable!(customer_segment_assignments -> customer_segments (segment_id));
diesel::joinable!(customer_stats -> customers (customer_id));
diesel::joinable!(customer_search -> customers (customer_id));

diesel::allow_tables_to_appear_in_same_query!(
    customers,
    product_categories,
    orders,
    order_items,
    loyalty_accounts,
    loyalty_transactions,
    referrals,
    marketing_consents,
    campaigns,
    campaign_events,
    support_tickets,
    web_sessions,
    category_views,
    customer_notes,
    customer_tags,
    customer_tag_assignments,
    customer_segments,
    customer_segment_assignments,
    customer_health_scores,
    customer_churn_risks,
    audit_log,
    email_outbox,
    idempotency_keys,
    customer_stats,
    customer_search,
    change_events,
    outbox_relay_state,
    segment_thresholds,
);

diesel::table! {
    segment_thresholds (id) {
        id -> Bool,
        quintiles -> Jsonb,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    customer_search (customer_id) {
        customer_id -> Int8,
        name_lc -> Text,
        email_lc -> Text,
        phone_digits -> Text,
    }
}
