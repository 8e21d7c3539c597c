//! Deterministic generation of realistic customers and everything that hangs off them, as COPY
//! rows. Each customer draws from its own random stream (derived from the seed and its index),
//! so a customer's data does not depend on how the work is chunked.

use std::ops::Range;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::db::enums::{
    CampaignEventType, ConsentChannel, DeviceType, NoteVisibility, OrderStatus, ReferralStatus,
    TicketPriority, TicketStatus,
};
use crate::domain::loyalty::tier_for_lifetime_points;
use crate::seed::catalog::*;
use crate::seed::copy::CopyBuf;

/// Every table a chunk of customers fills, in load order.
pub struct Batch {
    pub customers: u32,
    pub bufs: Vec<CopyBuf>,
}

const CUSTOMERS: usize = 0;
const ORDERS: usize = 1;
const ORDER_ITEMS: usize = 2;
const LOYALTY_ACCOUNTS: usize = 3;
const LOYALTY_TRANSACTIONS: usize = 4;
const REFERRALS: usize = 5;
const CONSENTS: usize = 6;
const CAMPAIGN_EVENTS: usize = 7;
const TICKETS: usize = 8;
const SESSIONS: usize = 9;
const CATEGORY_VIEWS: usize = 10;
const NOTES: usize = 11;
const TAG_ASSIGNMENTS: usize = 12;
const SEGMENT_ASSIGNMENTS: usize = 13;

fn empty_bufs() -> Vec<CopyBuf> {
    vec![
        CopyBuf::new(
            "customers",
            "id, name, email, phone, address_line, city, postal_code, country, birthday, created_at, updated_at",
        ),
        CopyBuf::new(
            "orders",
            "id, customer_id, order_number, status, subtotal_cents, discount_cents, shipping_cents, tax_cents, total_cents, currency, channel, placed_at, updated_at",
        ),
        CopyBuf::new(
            "order_items",
            "id, order_id, customer_id, category_id, product_name, quantity, unit_price_cents, created_at",
        ),
        CopyBuf::new(
            "loyalty_accounts",
            "customer_id, tier, balance, lifetime_points, referral_code, joined_at, updated_at",
        ),
        CopyBuf::new(
            "loyalty_transactions",
            "id, customer_id, points, reason, order_id, expires_at, admin_id, admin_name, created_at",
        ),
        CopyBuf::new(
            "referrals",
            "id, referrer_customer_id, referred_customer_id, referred_email, status, created_at",
        ),
        CopyBuf::new(
            "marketing_consents",
            "customer_id, channel, opted_in, updated_at",
        ),
        CopyBuf::new(
            "campaign_events",
            "id, campaign_id, customer_id, event_type, occurred_at",
        ),
        CopyBuf::new(
            "support_tickets",
            "id, customer_id, subject, description, status, priority, created_by, created_at, resolved_at, satisfaction, updated_at",
        ),
        CopyBuf::new(
            "web_sessions",
            "id, customer_id, device, started_at, duration_seconds, page_views, source",
        ),
        CopyBuf::new(
            "category_views",
            "id, customer_id, category_id, session_id, viewed_at",
        ),
        CopyBuf::new(
            "customer_notes",
            "id, customer_id, author_id, author_name, body, visibility, pinned, created_at, updated_at",
        ),
        CopyBuf::new(
            "customer_tag_assignments",
            "id, customer_id, tag_id, assigned_by, assigned_by_name, assigned_at",
        ),
        CopyBuf::new(
            "customer_segment_assignments",
            "id, customer_id, segment_id, source, assigned_by, assigned_at",
        ),
    ]
}

struct Campaign {
    id: i64,
    channel: ConsentChannel,
    started_at: DateTime<Utc>,
}

/// The next id of each table whose rows the generator numbers itself.
#[derive(Default)]
struct NextIds {
    order: i64,
    item: i64,
    loyalty_tx: i64,
    referral: i64,
    campaign_event: i64,
    ticket: i64,
    session: i64,
    view: i64,
    note: i64,
    tag_assignment: i64,
    segment_assignment: i64,
}

pub struct Generator {
    seed: u64,
    anchor: DateTime<Utc>,
    total_customers: u32,
    campaigns: Vec<Campaign>,
    ids: NextIds,
}

/// Manual segments take ids from here on; the automatic ones below are part of the schema.
const MANUAL_SEGMENT_FIRST_ID: i64 = 101;

/// Days of history before the anchor that signups are spread over.
const HISTORY_DAYS: i64 = 3 * 365;
const CAMPAIGN_COUNT: i64 = 60;

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn weighted(rng: &mut ChaCha8Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut ticket = rng.random_range(0..total);
    for (i, w) in weights.iter().enumerate() {
        if ticket < *w {
            return i;
        }
        ticket -= w;
    }
    weights.len() - 1
}

fn pick_weighted<'a>(rng: &mut ChaCha8Rng, items: &'a [(&'a str, u32)]) -> &'a str {
    let weights: Vec<u32> = items.iter().map(|(_, w)| *w).collect();
    items[weighted(rng, &weights)].0
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn between(rng: &mut ChaCha8Rng, from: DateTime<Utc>, to: DateTime<Utc>) -> DateTime<Utc> {
    let span = (to - from).num_seconds().max(1);
    from + Duration::seconds(rng.random_range(0..span))
}

/// A moment between `from` and `to` on a weekday and at an hour people really shop.
fn shopping_time(rng: &mut ChaCha8Rng, from: DateTime<Utc>, to: DateTime<Utc>) -> DateTime<Utc> {
    let days = (to - from).num_days().max(0);
    let max_weight = *WEEKDAY_WEIGHTS.iter().max().unwrap_or(&1);
    let mut day = from.date_naive();
    for _ in 0..16 {
        day = from.date_naive() + Duration::days(rng.random_range(0..=days));
        if rng.random_range(0..max_weight)
            < WEEKDAY_WEIGHTS[day.weekday().num_days_from_monday() as usize]
        {
            break;
        }
    }
    let hour = weighted(rng, &HOUR_WEIGHTS) as u32;
    let at = day.and_hms_opt(hour, rng.random_range(0..60), rng.random_range(0..60));
    let at = at.map_or(from, |t| t.and_utc());
    at.clamp(from, to)
}

/// Lower-case ASCII for email local parts.
fn ascii_slug(name: &str) -> String {
    name.chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            'é' | 'è' | 'ë' | 'É' => Some('e'),
            'ó' | 'ø' | 'ö' | 'Ø' => Some('o'),
            'á' | 'à' | 'ä' => Some('a'),
            'í' => Some('i'),
            'ü' | 'ú' => Some('u'),
            'ł' | 'Ł' => Some('l'),
            _ => None,
        })
        .collect()
}

impl Generator {
    pub fn new(seed: u64, anchor_day: NaiveDate, total_customers: u32) -> Generator {
        // unwrap: midnight exists on every day.
        let anchor = anchor_day.and_hms_opt(0, 0, 0).unwrap().and_utc();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut campaigns: Vec<Campaign> = (1..=CAMPAIGN_COUNT)
            .map(|id| Campaign {
                id,
                channel: match weighted(&mut rng, &[70, 15, 15]) {
                    0 => ConsentChannel::Email,
                    1 => ConsentChannel::Sms,
                    _ => ConsentChannel::Push,
                },
                started_at: between(&mut rng, anchor - Duration::days(HISTORY_DAYS), anchor),
            })
            .collect();
        campaigns.sort_by_key(|c| c.started_at);
        for (i, c) in campaigns.iter_mut().enumerate() {
            c.id = i as i64 + 1;
        }
        let ids = NextIds {
            order: 1,
            item: 1,
            loyalty_tx: 1,
            referral: 1,
            campaign_event: 1,
            ticket: 1,
            session: 1,
            view: 1,
            note: 1,
            tag_assignment: 1,
            segment_assignment: 1,
        };
        Generator {
            seed,
            anchor,
            total_customers,
            campaigns,
            ids,
        }
    }

    /// The shared catalogue rows: categories, campaigns, tags and manual segments.
    pub fn catalogue(&self) -> Vec<CopyBuf> {
        let mut categories = CopyBuf::new("product_categories", "id, name");
        for (i, (name, ..)) in CATEGORIES.iter().enumerate() {
            categories.int(i as i64 + 1).text(name);
            categories.end_row();
        }
        let mut campaigns = CopyBuf::new("campaigns", "id, name, channel, started_at");
        for c in &self.campaigns {
            let theme = CAMPAIGN_THEMES[(c.id as usize) % CAMPAIGN_THEMES.len()];
            let name = format!("{theme} {} ({})", c.started_at.year(), c.channel);
            campaigns
                .int(c.id)
                .text(&name)
                .text(c.channel.as_str())
                .ts(c.started_at);
            campaigns.end_row();
        }
        let mut tags = CopyBuf::new("customer_tags", "id, name, color, created_by, created_at");
        for (i, (name, color)) in TAGS.iter().enumerate() {
            tags.int(i as i64 + 1)
                .text(name)
                .text(color)
                .text(SEED_ADMINS[0].0)
                .ts(self.anchor - Duration::days(HISTORY_DAYS));
            tags.end_row();
        }
        let mut segments = CopyBuf::new(
            "customer_segments",
            "id, name, description, kind, rule, created_at",
        );
        for (i, (name, description)) in MANUAL_SEGMENTS.iter().enumerate() {
            segments
                .int(MANUAL_SEGMENT_FIRST_ID + i as i64)
                .text(name)
                .text(description)
                .text("manual")
                .null()
                .ts(self.anchor - Duration::days(HISTORY_DAYS));
            segments.end_row();
        }
        vec![categories, campaigns, tags, segments]
    }

    pub fn customers(&mut self, range: Range<u32>) -> Batch {
        let mut bufs = empty_bufs();
        let count = range.len() as u32;
        for index in range {
            self.customer(index, &mut bufs);
        }
        Batch {
            customers: count,
            bufs,
        }
    }

    fn customer(&mut self, index: u32, b: &mut [CopyBuf]) {
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(index + 1),
        );
        let rng = &mut rng;
        let id = i64::from(index) + 1;
        let anchor = self.anchor;

        // Signups skew recent: the shop grows.
        let days_ago = ((HISTORY_DAYS as f64) * rng.random::<f64>().powf(1.4)) as i64 + 1;
        let created_at = between(
            rng,
            anchor - Duration::days(days_ago),
            anchor - Duration::days(days_ago - 1),
        );

        let first = pick(rng, FIRST_NAMES);
        let last = pick(rng, LAST_NAMES);
        let email = format!(
            "{}.{}{}@{}",
            ascii_slug(first),
            ascii_slug(last),
            id,
            *pick(rng, EMAIL_DOMAINS)
        );
        let phone = match rng.random_range(0..10) {
            0 => None,
            1..=5 => Some(format!(
                "+1 (555) 0{:02}-{:04}",
                rng.random_range(0..100),
                rng.random_range(0..10_000)
            )),
            6 | 7 => Some(format!("+44 20 7946 {:04}", rng.random_range(0..10_000))),
            _ => Some(format!(
                "555.0{:02}.{:04}",
                rng.random_range(0..100),
                rng.random_range(0..10_000)
            )),
        };
        let (city, postal, country, currency) = *pick(rng, PLACES);
        let has_address = rng.random_bool(0.92);
        let birthday = rng
            .random_bool(0.88)
            .then(|| (anchor - Duration::days(rng.random_range(18 * 365..80 * 365))).date_naive());
        b[CUSTOMERS]
            .int(id)
            .text(&format!("{first} {last}"))
            .text(&email)
            .opt_text(phone.as_deref());
        if has_address {
            let line = format!("{} {}", rng.random_range(1..400), pick(rng, STREETS));
            let postal = format!("{postal}{:02}", rng.random_range(0..100));
            b[CUSTOMERS]
                .text(&line)
                .text(city)
                .text(&postal)
                .text(country);
        } else {
            b[CUSTOMERS].null().null().null().text(country);
        }
        match birthday {
            Some(d) => b[CUSTOMERS].date(d),
            None => b[CUSTOMERS].null(),
        };
        b[CUSTOMERS].ts(created_at).ts(created_at);
        b[CUSTOMERS].end_row();

        // Traits that make one customer's history hang together.
        let favourites: Vec<usize> = (0..rng.random_range(2..=3))
            .map(|_| rng.random_range(0..CATEGORIES.len()))
            .collect();
        let engagement = 0.05 + 0.65 * rng.random::<f64>().powf(1.5);
        let preferred_device = weighted(rng, &[35, 55, 10]);
        let tenure_days = (anchor - created_at).num_days().max(1);
        // A third of customers drift away at some point; their activity stops there.
        let active_until = if rng.random_bool(0.35) {
            created_at + Duration::days((tenure_days as f64 * rng.random::<f64>()) as i64)
        } else {
            anchor
        };

        let orders = self.orders(rng, id, created_at, active_until, currency, &favourites, b);
        self.loyalty(rng, id, created_at, &orders, b);
        self.marketing(rng, id, created_at, engagement, b);
        self.tickets(rng, id, created_at, &orders, b);
        self.sessions(
            rng,
            id,
            created_at,
            active_until,
            orders.len(),
            preferred_device,
            &favourites,
            b,
        );
        self.collaboration(rng, id, created_at, b);
    }

    /// Returns (order id, placed_at, total, earns points) for the loyalty ledger.
    #[allow(clippy::too_many_arguments)]
    fn orders(
        &mut self,
        rng: &mut ChaCha8Rng,
        customer: i64,
        created_at: DateTime<Utc>,
        active_until: DateTime<Utc>,
        currency: &str,
        favourites: &[usize],
        b: &mut [CopyBuf],
    ) -> Vec<(i64, DateTime<Utc>, i64, bool)> {
        let anchor = self.anchor;
        let tenure_years = ((anchor - created_at).num_days() as f64 / 365.0).min(1.0);
        // Heavy-tailed: most customers order a few times, a few order very often.
        let expected = (2.1 + 0.95 * normal(rng)).exp() * tenure_years.sqrt();
        let count = (expected.floor() as i64).clamp(0, 250);
        let mut times: Vec<DateTime<Utc>> = (0..count)
            .map(|_| shopping_time(rng, created_at, active_until))
            .collect();
        times.sort();
        let mut placed = Vec::with_capacity(times.len());
        for placed_at in times {
            let order_id = self.ids.order;
            self.ids.order += 1;
            let age = anchor - placed_at;
            let status = if age < Duration::days(2) {
                if rng.random_bool(0.3) {
                    OrderStatus::Pending
                } else {
                    OrderStatus::Paid
                }
            } else if age < Duration::days(7) {
                if rng.random_bool(0.2) {
                    OrderStatus::Paid
                } else {
                    OrderStatus::Shipped
                }
            } else {
                match weighted(rng, &[88, 5, 7]) {
                    0 => OrderStatus::Delivered,
                    1 => OrderStatus::Cancelled,
                    _ => OrderStatus::Refunded,
                }
            };
            let mut subtotal = 0i64;
            let items = 1 + weighted(rng, &[50, 28, 14, 8]);
            for _ in 0..items {
                let category = if rng.random_bool(0.7) {
                    *pick(rng, favourites)
                } else {
                    rng.random_range(0..CATEGORIES.len())
                };
                let (_, lo, hi, products) = CATEGORIES[category];
                let price = lo + ((hi - lo) as f64 * rng.random::<f64>().powi(3)) as i64;
                let quantity = 1 + weighted(rng, &[80, 15, 5]) as i64;
                subtotal += price * quantity;
                b[ORDER_ITEMS]
                    .int(self.ids.item)
                    .int(order_id)
                    .int(customer)
                    .int(category as i64 + 1)
                    .text(pick::<&str>(rng, products))
                    .int(quantity)
                    .int(price)
                    .ts(placed_at);
                b[ORDER_ITEMS].end_row();
                self.ids.item += 1;
            }
            let discount = if rng.random_bool(0.15) {
                subtotal * rng.random_range(10..=20) / 100
            } else {
                0
            };
            let shipping = if subtotal >= 5_000 { 0 } else { 599 };
            let tax = (subtotal - discount) * 8 / 100;
            let total = subtotal - discount + shipping + tax;
            let updated_at = (placed_at + Duration::hours(rng.random_range(1..72))).min(anchor);
            b[ORDERS]
                .int(order_id)
                .int(customer)
                .text(&format!("ORD-{order_id:08}"))
                .text(status.as_str())
                .int(subtotal)
                .int(discount)
                .int(shipping)
                .int(tax)
                .int(total)
                .text(currency)
                .text(pick_weighted(rng, ORDER_CHANNELS))
                .ts(placed_at)
                .ts(updated_at.max(placed_at));
            b[ORDERS].end_row();
            let earns = matches!(
                status,
                OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered
            );
            placed.push((order_id, placed_at, total, earns));
        }
        placed
    }

    /// An account for most customers: a welcome bonus, a point per dollar of each earning order,
    /// the odd redemption; the balance is the ledger's sum and the tier follows lifetime points.
    fn loyalty(
        &mut self,
        rng: &mut ChaCha8Rng,
        customer: i64,
        created_at: DateTime<Utc>,
        orders: &[(i64, DateTime<Utc>, i64, bool)],
        b: &mut [CopyBuf],
    ) {
        if !rng.random_bool(0.9) {
            return;
        }
        let anchor = self.anchor;
        let joined_at = (created_at + Duration::days(rng.random_range(0..30))).min(anchor);
        let mut balance = 0i64;
        let mut lifetime = 0i64;
        let ledger = |b: &mut [CopyBuf],
                      ids: &mut NextIds,
                      points: i64,
                      reason: &str,
                      order: Option<i64>,
                      at: DateTime<Utc>| {
            let expires = (points > 0).then(|| at + Duration::days(365));
            b[LOYALTY_TRANSACTIONS]
                .int(ids.loyalty_tx)
                .int(customer)
                .int(points)
                .text(reason)
                .opt_int(order)
                .opt_ts(expires)
                .null()
                .null()
                .ts(at);
            b[LOYALTY_TRANSACTIONS].end_row();
            ids.loyalty_tx += 1;
        };
        ledger(b, &mut self.ids, 100, "Welcome bonus", None, joined_at);
        balance += 100;
        lifetime += 100;
        for (order_id, placed_at, total, earns) in orders {
            if !earns || *placed_at < joined_at {
                continue;
            }
            let points = (total / 100).max(1);
            let at = *placed_at + Duration::minutes(1);
            ledger(
                b,
                &mut self.ids,
                points,
                &format!("Order ORD-{order_id:08}"),
                Some(*order_id),
                at,
            );
            balance += points;
            lifetime += points;
            if balance >= 500 && rng.random_bool(0.12) {
                let redeem = (balance / 100).min(20) * 100;
                let at = (at + Duration::days(rng.random_range(1..30))).min(anchor);
                ledger(
                    b,
                    &mut self.ids,
                    -redeem,
                    "Redeemed for a discount",
                    None,
                    at,
                );
                balance -= redeem;
            }
        }
        let tier = tier_for_lifetime_points(lifetime);
        let code = format!("C360-{customer:X}{:04X}", rng.random::<u16>());
        b[LOYALTY_ACCOUNTS]
            .int(customer)
            .text(tier.as_str())
            .int(balance)
            .int(lifetime)
            .text(&code)
            .ts(joined_at)
            .ts(anchor.min(joined_at + Duration::days(rng.random_range(0..400))));
        b[LOYALTY_ACCOUNTS].end_row();

        if rng.random_bool(0.08) {
            for n in 0..rng.random_range(1..=3) {
                let status = match weighted(rng, &[50, 30, 20]) {
                    0 => ReferralStatus::Invited,
                    1 => ReferralStatus::SignedUp,
                    _ => ReferralStatus::Converted,
                };
                let referred = (status != ReferralStatus::Invited)
                    .then(|| rng.random_range(1..=i64::from(self.total_customers)))
                    .filter(|other| *other != customer);
                b[REFERRALS]
                    .int(self.ids.referral)
                    .int(customer)
                    .opt_int(referred)
                    .text(&format!("friend{n}.{customer}@example.com"))
                    .text(status.as_str())
                    .ts(between(rng, joined_at, anchor));
                b[REFERRALS].end_row();
                self.ids.referral += 1;
            }
        }
    }

    /// Consents per channel, and the campaigns sent on channels the customer accepts, with
    /// opens, clicks and the odd unsubscribe in proportion to how engaged they are.
    fn marketing(
        &mut self,
        rng: &mut ChaCha8Rng,
        customer: i64,
        created_at: DateTime<Utc>,
        engagement: f64,
        b: &mut [CopyBuf],
    ) {
        let channels = [
            (ConsentChannel::Email, 0.72),
            (ConsentChannel::Sms, 0.28),
            (ConsentChannel::Push, 0.40),
        ];
        let mut opted: Vec<(ConsentChannel, bool, DateTime<Utc>)> = channels
            .iter()
            .map(|(channel, p)| (*channel, rng.random_bool(*p), created_at))
            .collect();
        for campaign in self.campaigns.iter().filter(|c| c.started_at > created_at) {
            let Some(slot) = opted
                .iter_mut()
                .find(|(ch, on, _)| *ch == campaign.channel && *on)
            else {
                continue;
            };
            if !rng.random_bool(0.35) {
                continue;
            }
            let sent_at = campaign.started_at + Duration::minutes(rng.random_range(0..600));
            let mut event = |b: &mut [CopyBuf], kind: CampaignEventType, at: DateTime<Utc>| {
                b[CAMPAIGN_EVENTS]
                    .int(self.ids.campaign_event)
                    .int(campaign.id)
                    .int(customer)
                    .text(kind.as_str())
                    .ts(at);
                b[CAMPAIGN_EVENTS].end_row();
                self.ids.campaign_event += 1;
            };
            event(b, CampaignEventType::Sent, sent_at);
            if rng.random_bool(engagement) {
                let opened_at = sent_at + Duration::minutes(rng.random_range(1..2_000));
                event(b, CampaignEventType::Opened, opened_at);
                if rng.random_bool(engagement * 0.5) {
                    event(
                        b,
                        CampaignEventType::Clicked,
                        opened_at + Duration::seconds(rng.random_range(5..600)),
                    );
                }
            }
            if rng.random_bool(0.006) {
                let at = sent_at + Duration::hours(rng.random_range(1..48));
                event(b, CampaignEventType::Unsubscribed, at);
                slot.1 = false;
                slot.2 = at;
            }
        }
        for (channel, on, at) in opted {
            b[CONSENTS]
                .int(customer)
                .text(channel.as_str())
                .bool(on)
                .ts(at.min(self.anchor));
            b[CONSENTS].end_row();
        }
    }

    /// Tickets: most customers never write; refunds make it likelier. Satisfaction follows how
    /// fast the ticket was resolved.
    fn tickets(
        &mut self,
        rng: &mut ChaCha8Rng,
        customer: i64,
        created_at: DateTime<Utc>,
        orders: &[(i64, DateTime<Utc>, i64, bool)],
        b: &mut [CopyBuf],
    ) {
        let unhappy_orders = orders.iter().filter(|o| !o.3).count();
        let count = weighted(rng, &[70, 18, 8, 4])
            + usize::from(unhappy_orders > 0 && rng.random_bool(0.5));
        let anchor = self.anchor;
        for _ in 0..count {
            let opened = between(rng, created_at, anchor);
            let priority = match weighted(rng, &[25, 50, 18, 7]) {
                0 => TicketPriority::Low,
                1 => TicketPriority::Normal,
                2 => TicketPriority::High,
                _ => TicketPriority::Urgent,
            };
            let resolution_hours = (1.5 + 1.2 * normal(rng)).exp().clamp(0.2, 400.0);
            let resolved = opened + Duration::minutes((resolution_hours * 60.0) as i64);
            let (status, resolved_at) = if resolved > anchor || rng.random_bool(0.04) {
                (
                    if rng.random_bool(0.6) {
                        TicketStatus::Open
                    } else {
                        TicketStatus::Pending
                    },
                    None,
                )
            } else if rng.random_bool(0.72) {
                (TicketStatus::Resolved, Some(resolved))
            } else {
                (TicketStatus::Closed, Some(resolved))
            };
            let satisfaction = resolved_at.filter(|_| rng.random_bool(0.8)).map(|_| {
                let base: i64 = if resolution_hours < 4.0 {
                    5
                } else if resolution_hours < 24.0 {
                    4
                } else if resolution_hours < 96.0 {
                    3
                } else {
                    2
                };
                (base + rng.random_range(-1..=0)).clamp(1, 5)
            });
            let subject = pick(rng, TICKET_SUBJECTS);
            b[TICKETS]
                .int(self.ids.ticket)
                .int(customer)
                .text(subject)
                .text(&format!("Customer wrote: \"{subject}\" Please advise."))
                .text(status.as_str())
                .text(priority.as_str())
                .null()
                .ts(opened)
                .opt_ts(resolved_at)
                .opt_int(satisfaction)
                .ts(resolved_at.unwrap_or(opened));
            b[TICKETS].end_row();
            self.ids.ticket += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn sessions(
        &mut self,
        rng: &mut ChaCha8Rng,
        customer: i64,
        created_at: DateTime<Utc>,
        active_until: DateTime<Utc>,
        order_count: usize,
        preferred_device: usize,
        favourites: &[usize],
        b: &mut [CopyBuf],
    ) {
        let count = order_count / 2 + rng.random_range(0..5);
        for _ in 0..count {
            let device_index = if rng.random_bool(0.7) {
                preferred_device
            } else {
                weighted(rng, &[35, 55, 10])
            };
            let device =
                [DeviceType::Desktop, DeviceType::Mobile, DeviceType::Tablet][device_index];
            let started_at = shopping_time(rng, created_at, active_until);
            let duration = ((4.5 + 1.0 * normal(rng)).exp() as i64).clamp(5, 7_200);
            let page_views = (1 + duration / 45 + rng.random_range(0..4)).min(200);
            let session_id = self.ids.session;
            b[SESSIONS]
                .int(session_id)
                .int(customer)
                .text(device.as_str())
                .ts(started_at)
                .int(duration)
                .int(page_views)
                .text(pick_weighted(rng, SESSION_SOURCES));
            b[SESSIONS].end_row();
            self.ids.session += 1;
            for _ in 0..weighted(rng, &[30, 45, 25]) {
                let category = if rng.random_bool(0.75) {
                    *pick(rng, favourites)
                } else {
                    rng.random_range(0..CATEGORIES.len())
                };
                let viewed_at = started_at + Duration::seconds(rng.random_range(0..=duration));
                b[CATEGORY_VIEWS]
                    .int(self.ids.view)
                    .int(customer)
                    .int(category as i64 + 1)
                    .int(session_id)
                    .ts(viewed_at);
                b[CATEGORY_VIEWS].end_row();
                self.ids.view += 1;
            }
        }
    }

    /// What admins left behind: a few notes, tags and manual segment memberships.
    fn collaboration(
        &mut self,
        rng: &mut ChaCha8Rng,
        customer: i64,
        created_at: DateTime<Utc>,
        b: &mut [CopyBuf],
    ) {
        let anchor = self.anchor;
        if rng.random_bool(0.04) {
            for _ in 0..rng.random_range(1..=2) {
                let (author_id, author_name) = *pick(rng, SEED_ADMINS);
                let at = between(rng, created_at, anchor);
                let visibility = if rng.random_bool(0.75) {
                    NoteVisibility::Public
                } else {
                    NoteVisibility::Private
                };
                b[NOTES]
                    .int(self.ids.note)
                    .int(customer)
                    .text(author_id)
                    .text(author_name)
                    .text(pick::<&str>(rng, NOTE_BODIES))
                    .text(visibility.as_str())
                    .bool(rng.random_bool(0.2))
                    .ts(at)
                    .ts(at);
                b[NOTES].end_row();
                self.ids.note += 1;
            }
        }
        if rng.random_bool(0.05) {
            let first = rng.random_range(0..TAGS.len());
            let second = rng
                .random_bool(0.3)
                .then(|| (first + 1 + rng.random_range(0..TAGS.len() - 1)) % TAGS.len());
            for tag in std::iter::once(first).chain(second) {
                let (admin_id, admin_name) = *pick(rng, SEED_ADMINS);
                b[TAG_ASSIGNMENTS]
                    .int(self.ids.tag_assignment)
                    .int(customer)
                    .int(tag as i64 + 1)
                    .text(admin_id)
                    .text(admin_name)
                    .ts(between(rng, created_at, anchor));
                b[TAG_ASSIGNMENTS].end_row();
                self.ids.tag_assignment += 1;
            }
        }
        if rng.random_bool(0.02) {
            let segment =
                MANUAL_SEGMENT_FIRST_ID + rng.random_range(0..MANUAL_SEGMENTS.len()) as i64;
            let (admin_id, _) = *pick(rng, SEED_ADMINS);
            b[SEGMENT_ASSIGNMENTS]
                .int(self.ids.segment_assignment)
                .int(customer)
                .int(segment)
                .text("manual")
                .text(admin_id)
                .ts(between(rng, created_at, anchor));
            b[SEGMENT_ASSIGNMENTS].end_row();
            self.ids.segment_assignment += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
    }

    #[test]
    fn same_seed_same_rows() {
        let rows = |seed| {
            let mut g = Generator::new(seed, day(), 50);
            let batch = g.customers(0..50);
            batch.bufs.iter().map(|b| b.rows).collect::<Vec<_>>()
        };
        assert_eq!(rows(7), rows(7));
        assert_ne!(rows(7), rows(8));
    }

    #[test]
    fn chunking_does_not_change_a_customer() {
        let mut whole = Generator::new(3, day(), 40);
        let all = whole.customers(0..40);
        let mut chunked = Generator::new(3, day(), 40);
        let a = chunked.customers(0..15);
        let b = chunked.customers(15..40);
        let rows = |bs: &[&Batch], i: usize| bs.iter().map(|b| b.bufs[i].rows).sum::<usize>();
        for table in 0..all.bufs.len() {
            assert_eq!(
                rows(&[&all], table),
                rows(&[&a, &b], table),
                "table {table}"
            );
        }
    }

    #[test]
    fn shopping_hours_follow_the_weights() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let from = day().and_hms_opt(0, 0, 0).unwrap().and_utc() - Duration::days(300);
        let to = from + Duration::days(300);
        let mut hours = [0u32; 24];
        for _ in 0..20_000 {
            hours[shopping_time(&mut rng, from, to).hour() as usize] += 1;
        }
        assert!(
            hours[20] > 3 * hours[4],
            "evening {} vs night {}",
            hours[20],
            hours[4]
        );
    }
}
