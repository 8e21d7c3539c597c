-- The whole customer360 data model: the commerce tables the 360 view reads, the 360 tables
-- admins write, exact per-customer stats kept by triggers, and the change_events outbox that
-- turns every write to a customer's data, whoever makes it, into an event.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded');
CREATE TYPE loyalty_tier AS ENUM ('bronze', 'silver', 'gold', 'platinum');
CREATE TYPE consent_channel AS ENUM ('email', 'sms', 'push');
CREATE TYPE campaign_event_type AS ENUM ('sent', 'opened', 'clicked', 'unsubscribed');
CREATE TYPE ticket_status AS ENUM ('open', 'pending', 'resolved', 'closed');
CREATE TYPE ticket_priority AS ENUM ('low', 'normal', 'high', 'urgent');
CREATE TYPE device_type AS ENUM ('desktop', 'mobile', 'tablet');
CREATE TYPE note_visibility AS ENUM ('public', 'private');
CREATE TYPE segment_kind AS ENUM ('automatic', 'manual');
CREATE TYPE assignment_source AS ENUM ('auto', 'manual');
CREATE TYPE churn_risk_level AS ENUM ('low', 'medium', 'high', 'critical');
CREATE TYPE referral_status AS ENUM ('invited', 'signed_up', 'converted');
CREATE TYPE email_status AS ENUM ('queued', 'sent', 'failed');

-- ---------------------------------------------------------------- commerce

CREATE TABLE customers (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email        TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    phone        TEXT,
    -- Digits only, so a search for "+1 (555) 010-2030" and "5550102030" find the same row.
    phone_digits TEXT GENERATED ALWAYS AS (regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g')) STORED,
    address_line TEXT,
    city         TEXT,
    postal_code  TEXT,
    country      TEXT,
    birthday     DATE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX customers_email_lower_key ON customers (lower(email));
CREATE INDEX customers_name_trgm ON customers USING gin (name gin_trgm_ops);
CREATE INDEX customers_email_trgm ON customers USING gin (email gin_trgm_ops);
CREATE INDEX customers_phone_digits_trgm ON customers USING gin (phone_digits gin_trgm_ops);
CREATE INDEX customers_created_at ON customers (created_at);
CREATE INDEX customers_name_lower ON customers (lower(name), id);

CREATE TABLE product_categories (
    id   SERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE orders (
    id             BIGSERIAL PRIMARY KEY,
    customer_id    BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    order_number   TEXT NOT NULL UNIQUE,
    status         order_status NOT NULL DEFAULT 'pending',
    subtotal_cents BIGINT NOT NULL CHECK (subtotal_cents >= 0),
    discount_cents BIGINT NOT NULL DEFAULT 0 CHECK (discount_cents >= 0),
    shipping_cents BIGINT NOT NULL DEFAULT 0 CHECK (shipping_cents >= 0),
    tax_cents      BIGINT NOT NULL DEFAULT 0 CHECK (tax_cents >= 0),
    total_cents    BIGINT NOT NULL CHECK (total_cents >= 0),
    currency       TEXT NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    channel        TEXT NOT NULL DEFAULT 'web',
    placed_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_placed ON orders (customer_id, placed_at DESC, id DESC);

CREATE TABLE order_items (
    id               BIGSERIAL PRIMARY KEY,
    order_id         BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    -- Denormalised from the order so the item's change event and the analytics slice need no join.
    customer_id      BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    category_id      INTEGER NOT NULL REFERENCES product_categories (id),
    product_name     TEXT NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX order_items_order ON order_items (order_id);
CREATE INDEX order_items_customer ON order_items (customer_id, created_at DESC);

CREATE TABLE loyalty_accounts (
    customer_id     BIGINT PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    tier            loyalty_tier NOT NULL DEFAULT 'bronze',
    balance         BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    lifetime_points BIGINT NOT NULL DEFAULT 0 CHECK (lifetime_points >= 0),
    referral_code   TEXT NOT NULL UNIQUE,
    joined_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX loyalty_accounts_tier ON loyalty_accounts (tier);

CREATE TABLE loyalty_transactions (
    id          BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    points      INTEGER NOT NULL CHECK (points <> 0),
    reason      TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    order_id    BIGINT REFERENCES orders (id) ON DELETE SET NULL,
    expires_at  TIMESTAMPTZ,
    admin_id    TEXT,
    admin_name  TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX loyalty_transactions_customer ON loyalty_transactions (customer_id, created_at DESC, id DESC);

CREATE TABLE referrals (
    id                   BIGSERIAL PRIMARY KEY,
    referrer_customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    referred_customer_id BIGINT REFERENCES customers (id) ON DELETE SET NULL,
    referred_email       TEXT NOT NULL,
    status               referral_status NOT NULL DEFAULT 'invited',
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX referrals_referrer ON referrals (referrer_customer_id, created_at DESC);

CREATE TABLE marketing_consents (
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    channel     consent_channel NOT NULL,
    opted_in    BOOLEAN NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, channel)
);

CREATE TABLE campaigns (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL,
    channel    consent_channel NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE campaign_events (
    id          BIGSERIAL PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    event_type  campaign_event_type NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX campaign_events_customer ON campaign_events (customer_id, occurred_at DESC, id DESC);

CREATE TABLE support_tickets (
    id           BIGSERIAL PRIMARY KEY,
    customer_id  BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    subject      TEXT NOT NULL CHECK (length(subject) BETWEEN 1 AND 300),
    description  TEXT NOT NULL DEFAULT '',
    status       ticket_status NOT NULL DEFAULT 'open',
    priority     ticket_priority NOT NULL DEFAULT 'normal',
    created_by   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at  TIMESTAMPTZ,
    satisfaction SMALLINT CHECK (satisfaction BETWEEN 1 AND 5),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (resolved_at IS NULL OR resolved_at >= created_at)
);
CREATE INDEX support_tickets_customer ON support_tickets (customer_id, created_at DESC, id DESC);

CREATE TABLE web_sessions (
    id               BIGSERIAL PRIMARY KEY,
    customer_id      BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    device           device_type NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    duration_seconds INTEGER NOT NULL CHECK (duration_seconds >= 0),
    page_views       INTEGER NOT NULL CHECK (page_views >= 0),
    source           TEXT NOT NULL
);
CREATE INDEX web_sessions_customer ON web_sessions (customer_id, started_at DESC, id DESC);

CREATE TABLE category_views (
    id          BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    category_id INTEGER NOT NULL REFERENCES product_categories (id),
    session_id  BIGINT REFERENCES web_sessions (id) ON DELETE SET NULL,
    viewed_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX category_views_customer ON category_views (customer_id, viewed_at DESC, id DESC);

-- ---------------------------------------------------------------- the 360 tables

CREATE TABLE customer_notes (
    id          BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    author_id   TEXT NOT NULL,
    author_name TEXT NOT NULL,
    body        TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    visibility  note_visibility NOT NULL DEFAULT 'public',
    pinned      BOOLEAN NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX customer_notes_customer ON customer_notes (customer_id, created_at DESC, id DESC);

CREATE TABLE customer_tags (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 64),
    color      TEXT NOT NULL CHECK (color ~ '^#[0-9a-fA-F]{6}$'),
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX customer_tags_name_lower_key ON customer_tags (lower(name));

CREATE TABLE customer_tag_assignments (
    id               BIGSERIAL PRIMARY KEY,
    customer_id      BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    tag_id           BIGINT NOT NULL REFERENCES customer_tags (id) ON DELETE CASCADE,
    assigned_by      TEXT NOT NULL,
    assigned_by_name TEXT NOT NULL,
    assigned_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (customer_id, tag_id)
);
CREATE INDEX customer_tag_assignments_customer ON customer_tag_assignments (customer_id, assigned_at DESC);
CREATE INDEX customer_tag_assignments_tag ON customer_tag_assignments (tag_id);

CREATE TABLE customer_segments (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    kind        segment_kind NOT NULL,
    -- The rule of an automatic segment (evaluated by the segment pass); null for manual ones.
    rule        JSONB,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((kind = 'automatic') = (rule IS NOT NULL))
);
CREATE UNIQUE INDEX customer_segments_name_lower_key ON customer_segments (lower(name));

CREATE TABLE customer_segment_assignments (
    id          BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    segment_id  BIGINT NOT NULL REFERENCES customer_segments (id) ON DELETE CASCADE,
    source      assignment_source NOT NULL,
    assigned_by TEXT,
    assigned_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (customer_id, segment_id)
);
CREATE INDEX customer_segment_assignments_customer ON customer_segment_assignments (customer_id, assigned_at DESC);
CREATE INDEX customer_segment_assignments_segment ON customer_segment_assignments (segment_id);

CREATE TABLE customer_health_scores (
    id          BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    score       SMALLINT NOT NULL CHECK (score BETWEEN 0 AND 100),
    -- [{"factor":"recency","weight":25,"contribution":18,"explanation":"..."}, ...]
    factors     JSONB NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX customer_health_scores_customer ON customer_health_scores (customer_id, computed_at DESC, id DESC);

CREATE TABLE customer_churn_risks (
    id          BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    level       churn_risk_level NOT NULL,
    reasons     JSONB NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX customer_churn_risks_customer ON customer_churn_risks (customer_id, computed_at DESC, id DESC);

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    actor_id    TEXT NOT NULL,
    actor_name  TEXT NOT NULL,
    actor_role  TEXT NOT NULL,
    action      TEXT NOT NULL,
    -- No foreign key: the audit trail outlives the customer it talks about.
    customer_id BIGINT,
    details     JSONB NOT NULL DEFAULT '{}',
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_customer ON audit_log (customer_id, at DESC);
CREATE INDEX audit_log_at ON audit_log (at DESC);

CREATE TABLE email_outbox (
    id          BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    to_email    TEXT NOT NULL,
    subject     TEXT NOT NULL CHECK (length(subject) BETWEEN 1 AND 300),
    body        TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 50000),
    status      email_status NOT NULL DEFAULT 'queued',
    queued_by   TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at     TIMESTAMPTZ
);
CREATE INDEX email_outbox_customer ON email_outbox (customer_id, created_at DESC);
CREATE INDEX email_outbox_queued ON email_outbox (created_at) WHERE status = 'queued';

-- Replays of POSTed quick actions: the first response is stored and returned again for the same key.
CREATE TABLE idempotency_keys (
    actor_id      TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    response_code SMALLINT NOT NULL,
    response_body JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (actor_id, key)
);

-- ---------------------------------------------------------------- customer_stats

-- Revenue orders are those paid, shipped or delivered: pending money is not yet earned and
-- cancelled or refunded money was given back. Search filters and metrics read these columns.
CREATE TABLE customer_stats (
    customer_id             BIGINT PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    lifetime_value_cents    BIGINT NOT NULL DEFAULT 0,
    order_count             INTEGER NOT NULL DEFAULT 0,
    first_order_at          TIMESTAMPTZ,
    last_order_at           TIMESTAMPTZ,
    avg_order_value_cents   BIGINT NOT NULL DEFAULT 0,
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX customer_stats_ltv ON customer_stats (lifetime_value_cents, customer_id);
CREATE INDEX customer_stats_order_count ON customer_stats (order_count, customer_id);
CREATE INDEX customer_stats_last_order ON customer_stats (last_order_at, customer_id);

-- The one definition of the revenue rule, read by the trigger below and by bulk loads.
CREATE VIEW customer_revenue AS
SELECT customer_id,
       sum(total_cents)::bigint                           AS lifetime_value_cents,
       count(*)::int                                      AS order_count,
       min(placed_at)                                     AS first_order_at,
       max(placed_at)                                     AS last_order_at,
       round(sum(total_cents)::numeric / count(*))::bigint AS avg_order_value_cents
FROM orders
WHERE status IN ('paid', 'shipped', 'delivered')
GROUP BY customer_id;

CREATE FUNCTION c360_refresh_customer_stats(cid BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- Lock the stats row first, in its own statement: the aggregate below then runs on a snapshot
    -- taken after any concurrent writer of this customer's orders has committed, so it is exact.
    INSERT INTO customer_stats (customer_id) VALUES (cid) ON CONFLICT (customer_id) DO NOTHING;
    PERFORM 1 FROM customer_stats WHERE customer_id = cid FOR UPDATE;
    UPDATE customer_stats s SET
        lifetime_value_cents  = coalesce(r.lifetime_value_cents, 0),
        order_count           = coalesce(r.order_count, 0),
        first_order_at        = r.first_order_at,
        last_order_at         = r.last_order_at,
        avg_order_value_cents = coalesce(r.avg_order_value_cents, 0),
        updated_at            = now()
    FROM (SELECT cid AS customer_id) k
    LEFT JOIN customer_revenue r ON r.customer_id = k.customer_id
    WHERE s.customer_id = cid;
END $$;

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

CREATE FUNCTION c360_customers_stats_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_stats (customer_id) VALUES (NEW.id) ON CONFLICT (customer_id) DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER customers_stats AFTER INSERT ON customers
    FOR EACH ROW EXECUTE FUNCTION c360_customers_stats_trigger();

-- ---------------------------------------------------------------- change_events outbox

CREATE TABLE change_events (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    -- No foreign key: a customer's deletion is itself an event that must survive the row.
    customer_id  BIGINT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('order', 'loyalty', 'ticket', 'marketing', 'session', 'note', 'tag', 'segment', 'profile')),
    op           TEXT NOT NULL CHECK (op IN ('created', 'updated', 'deleted')),
    entity_id    TEXT NOT NULL,
    -- clock_timestamp, not now(): the time of the write itself, for propagation measurements.
    at           TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX change_events_customer_at ON change_events (customer_id, at DESC);

-- Where the outbox relay has got to; one row, advanced in the same transaction that reads.
CREATE TABLE outbox_relay_state (
    id            BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    published_seq BIGINT NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO outbox_relay_state DEFAULT VALUES;

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

CREATE TRIGGER customers_change AFTER INSERT OR UPDATE OR DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('profile', 'id', 'id');
CREATE TRIGGER orders_change AFTER INSERT OR UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('order', 'customer_id', 'id');
CREATE TRIGGER order_items_change AFTER INSERT OR UPDATE OR DELETE ON order_items
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('order', 'customer_id', 'order_id');
CREATE TRIGGER loyalty_accounts_change AFTER INSERT OR UPDATE OR DELETE ON loyalty_accounts
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('loyalty', 'customer_id', 'customer_id');
CREATE TRIGGER loyalty_transactions_change AFTER INSERT OR UPDATE OR DELETE ON loyalty_transactions
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('loyalty', 'customer_id', 'id');
CREATE TRIGGER referrals_change AFTER INSERT OR UPDATE OR DELETE ON referrals
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('loyalty', 'referrer_customer_id', 'id');
CREATE TRIGGER marketing_consents_change AFTER INSERT OR UPDATE OR DELETE ON marketing_consents
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('marketing', 'customer_id', 'channel');
CREATE TRIGGER campaign_events_change AFTER INSERT OR UPDATE OR DELETE ON campaign_events
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('marketing', 'customer_id', 'id');
CREATE TRIGGER email_outbox_change AFTER INSERT OR UPDATE OR DELETE ON email_outbox
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('marketing', 'customer_id', 'id');
CREATE TRIGGER support_tickets_change AFTER INSERT OR UPDATE OR DELETE ON support_tickets
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('ticket', 'customer_id', 'id');
CREATE TRIGGER web_sessions_change AFTER INSERT OR UPDATE OR DELETE ON web_sessions
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('session', 'customer_id', 'id');
CREATE TRIGGER category_views_change AFTER INSERT OR UPDATE OR DELETE ON category_views
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('session', 'customer_id', 'id');
CREATE TRIGGER customer_notes_change AFTER INSERT OR UPDATE OR DELETE ON customer_notes
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('note', 'customer_id', 'id');
CREATE TRIGGER customer_tag_assignments_change AFTER INSERT OR UPDATE OR DELETE ON customer_tag_assignments
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('tag', 'customer_id', 'tag_id');
CREATE TRIGGER customer_segment_assignments_change AFTER INSERT OR UPDATE OR DELETE ON customer_segment_assignments
    FOR EACH ROW EXECUTE FUNCTION c360_emit_change('segment', 'customer_id', 'segment_id');
