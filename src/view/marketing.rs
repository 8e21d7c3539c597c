//! The marketing slice: consent per channel, recent campaigns with opens and clicks, open and
//! click rates, queued emails and the segments the customer is in.

use crate::db::prepared::{bind, prepared};
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::enums::{ConsentChannel, EmailStatus};
use crate::view::{JsonRow, decode};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Consent {
    pub channel: ConsentChannel,
    /// False when the customer never answered, too.
    pub opted_in: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CampaignActivity {
    pub campaign_id: i64,
    pub name: String,
    pub channel: ConsentChannel,
    pub sent_at: Option<DateTime<Utc>>,
    pub opened: bool,
    pub clicked: bool,
    pub unsubscribed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueuedEmail {
    pub id: i64,
    pub subject: String,
    pub status: EmailStatus,
    pub queued_by: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MarketingSlice {
    /// One entry per channel (email, sms, push).
    pub consents: Vec<Consent>,
    pub campaigns_sent: i64,
    pub campaigns_opened: i64,
    pub campaigns_clicked: i64,
    /// Opened over sent campaigns, 0–1; null before the first send.
    pub open_rate: Option<f64>,
    pub click_rate: Option<f64>,
    pub unsubscribed: bool,
    pub recent_campaigns: Vec<CampaignActivity>,
    pub recent_emails: Vec<QueuedEmail>,
    /// Names of the segments the customer is in.
    pub segments: Vec<String>,
}

#[derive(Deserialize)]
struct Raw {
    consents: Vec<Consent>,
    sent: i64,
    opened: i64,
    clicked: i64,
    unsubscribed: i64,
    recent_campaigns: Vec<CampaignActivity>,
    recent_emails: Vec<QueuedEmail>,
}

const SQL: &str = "SELECT jsonb_build_object(
    'consents', (SELECT coalesce(jsonb_agg(jsonb_build_object('channel', ch, 'opted_in', coalesce(m.opted_in, false),
            'updated_at', m.updated_at) ORDER BY ch), '[]')
        FROM unnest(enum_range(NULL::consent_channel)) ch
        LEFT JOIN marketing_consents m ON m.customer_id = $1 AND m.channel = ch),
    'sent', (SELECT count(DISTINCT campaign_id) FROM campaign_events WHERE customer_id = $1 AND event_type = 'sent'),
    'opened', (SELECT count(DISTINCT campaign_id) FROM campaign_events WHERE customer_id = $1 AND event_type = 'opened'),
    'clicked', (SELECT count(DISTINCT campaign_id) FROM campaign_events WHERE customer_id = $1 AND event_type = 'clicked'),
    'unsubscribed', (SELECT count(*) FROM campaign_events WHERE customer_id = $1 AND event_type = 'unsubscribed'),
    'recent_campaigns', (SELECT coalesce(jsonb_agg(x ORDER BY x.last_at DESC, x.campaign_id DESC), '[]') FROM
        (SELECT c.id AS campaign_id, c.name, c.channel,
                min(e.occurred_at) FILTER (WHERE e.event_type = 'sent') AS sent_at,
                bool_or(e.event_type = 'opened') AS opened, bool_or(e.event_type = 'clicked') AS clicked,
                bool_or(e.event_type = 'unsubscribed') AS unsubscribed, max(e.occurred_at) AS last_at
         FROM campaign_events e JOIN campaigns c ON c.id = e.campaign_id
         WHERE e.customer_id = $1 GROUP BY c.id ORDER BY max(e.occurred_at) DESC, c.id DESC LIMIT 10) x),
    'recent_emails', (SELECT coalesce(jsonb_agg(m ORDER BY m.created_at DESC, m.id DESC), '[]') FROM
        (SELECT id, subject, status, queued_by, created_at, sent_at FROM email_outbox
         WHERE customer_id = $1 ORDER BY created_at DESC, id DESC LIMIT 5) m)
  ) AS data";

pub async fn load(mut conn: &AsyncPgConnection, customer_id: i64) -> QueryResult<MarketingSlice> {
    let raw: Raw = decode(
        prepared(SQL, vec![bind::<BigInt, _>(customer_id)])
            .get_result::<JsonRow>(&mut conn)
            .await?,
    )?;
    let rate = |n: i64| (raw.sent > 0).then(|| n as f64 / raw.sent as f64);
    Ok(MarketingSlice {
        consents: raw.consents,
        campaigns_sent: raw.sent,
        campaigns_opened: raw.opened,
        campaigns_clicked: raw.clicked,
        open_rate: rate(raw.opened),
        click_rate: rate(raw.clicked),
        unsubscribed: raw.unsubscribed > 0,
        recent_campaigns: raw.recent_campaigns,
        recent_emails: raw.recent_emails,
        segments: Vec::new(),
    })
}
