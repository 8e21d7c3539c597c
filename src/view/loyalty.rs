//! The loyalty slice: tier and progress to the next one, balance, points expiring within 30
//! days (redemptions use the oldest points first), referrals and recent transactions.

use crate::db::prepared::{bind, prepared};
use chrono::{DateTime, Duration, Utc};
use diesel::QueryResult;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::enums::{LoyaltyTier, ReferralStatus};
use crate::domain::loyalty::next_tier;
use crate::domain::masking::Masking;
use crate::view::{JsonRow, decode};

/// Points expiring within this many days raise the warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Account {
    pub tier: LoyaltyTier,
    pub balance: i64,
    pub lifetime_points: i64,
    pub referral_code: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TierProgress {
    pub next_tier: LoyaltyTier,
    pub points_needed: i64,
    /// 0–100 of the way from the current tier's threshold to the next one's.
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transaction {
    pub id: i64,
    pub points: i64,
    pub reason: String,
    pub order_id: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub admin_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Referral {
    pub id: i64,
    pub referred_email: String,
    pub referred_customer_id: Option<i64>,
    pub status: ReferralStatus,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoyaltySlice {
    /// Null when the customer is not in the programme.
    pub account: Option<Account>,
    pub progress: Option<TierProgress>,
    pub expiring_points_30d: i64,
    pub next_expiry_at: Option<DateTime<Utc>>,
    pub expiry_warning: bool,
    pub active_last_90_days: bool,
    pub referrals_total: i64,
    pub referrals_converted: i64,
    pub referrals: Vec<Referral>,
    pub recent_transactions: Vec<Transaction>,
}

/// A ledger row: points (signed), when, when they expire.
pub type LedgerEntry = (i64, DateTime<Utc>, Option<DateTime<Utc>>);

#[derive(Deserialize)]
struct Raw {
    account: Option<Account>,
    /// Oldest first.
    ledger: Vec<LedgerEntry>,
    recent: Vec<Transaction>,
    referrals: Vec<Referral>,
    referrals_total: i64,
    referrals_converted: i64,
}

const SQL: &str = "SELECT jsonb_build_object(
    'account', (SELECT to_jsonb(a) FROM (SELECT tier, balance, lifetime_points, referral_code, joined_at
        FROM loyalty_accounts WHERE customer_id = $1) a),
    'ledger', (SELECT coalesce(jsonb_agg(jsonb_build_array(points, created_at, expires_at) ORDER BY created_at, id), '[]')
        FROM loyalty_transactions WHERE customer_id = $1),
    'recent', (SELECT coalesce(jsonb_agg(t ORDER BY t.created_at DESC, t.id DESC), '[]') FROM
        (SELECT id, points, reason, order_id, expires_at, admin_name, created_at FROM loyalty_transactions
         WHERE customer_id = $1 ORDER BY created_at DESC, id DESC LIMIT 10) t),
    'referrals', (SELECT coalesce(jsonb_agg(r ORDER BY r.created_at DESC, r.id DESC), '[]') FROM
        (SELECT id, referred_email, referred_customer_id, status, created_at FROM referrals
         WHERE referrer_customer_id = $1 ORDER BY created_at DESC, id DESC LIMIT 10) r),
    'referrals_total', (SELECT count(*) FROM referrals WHERE referrer_customer_id = $1),
    'referrals_converted', (SELECT count(*) FROM referrals WHERE referrer_customer_id = $1 AND status = 'converted')
  ) AS data";

pub async fn load(
    mut conn: &AsyncPgConnection,
    customer_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<LoyaltySlice> {
    let raw: Raw = decode(
        prepared(SQL, vec![bind::<BigInt, _>(customer_id)])
            .get_result::<JsonRow>(&mut conn)
            .await?,
    )?;
    let (expiring, next_expiry) =
        expiring_points(&raw.ledger, now, Duration::days(EXPIRY_WARNING_DAYS));
    let progress = raw.account.as_ref().and_then(|a| {
        let (next, at) = next_tier(a.tier)?;
        let from = crate::domain::loyalty::TIER_THRESHOLDS
            .iter()
            .find(|(t, _)| *t == a.tier)
            .map_or(0, |(_, p)| *p);
        let span = (at - from).max(1) as f64;
        Some(TierProgress {
            next_tier: next,
            points_needed: (at - a.lifetime_points).max(0),
            percent: (((a.lifetime_points - from) as f64 / span) * 100.0)
                .clamp(0.0, 100.0)
                .round(),
        })
    });
    let active_last_90_days = raw
        .ledger
        .iter()
        .any(|(_, at, _)| now - *at <= Duration::days(90));
    Ok(LoyaltySlice {
        account: raw.account,
        progress,
        expiring_points_30d: expiring,
        next_expiry_at: next_expiry,
        expiry_warning: expiring > 0,
        active_last_90_days,
        referrals_total: raw.referrals_total,
        referrals_converted: raw.referrals_converted,
        referrals: raw.referrals,
        recent_transactions: raw.recent,
    })
}

/// Points of the balance that expire between `now` and `now + window`: earned lots are used
/// oldest first by redemptions; what remains of each lot expires on its date.
pub fn expiring_points(
    ledger: &[LedgerEntry],
    now: DateTime<Utc>,
    window: Duration,
) -> (i64, Option<DateTime<Utc>>) {
    let mut lots: Vec<(i64, Option<DateTime<Utc>>)> = Vec::new();
    for (points, _, expires_at) in ledger {
        if *points > 0 {
            lots.push((*points, *expires_at));
        } else {
            let mut debit = -points;
            for lot in lots.iter_mut() {
                let used = lot.0.min(debit);
                lot.0 -= used;
                debit -= used;
                if debit == 0 {
                    break;
                }
            }
        }
    }
    let soon: Vec<&(i64, Option<DateTime<Utc>>)> = lots
        .iter()
        .filter(|(left, at)| *left > 0 && at.is_some_and(|at| at >= now && at <= now + window))
        .collect();
    (
        soon.iter().map(|(left, _)| left).sum(),
        soon.iter().filter_map(|(_, at)| *at).min(),
    )
}

impl LoyaltySlice {
    pub fn masked(mut self, masking: Masking) -> LoyaltySlice {
        for r in &mut self.referrals {
            r.referred_email = masking.email(&r.referred_email);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redemptions_use_the_oldest_points_first() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let day = |d: i64| now + Duration::days(d);
        let ledger = [
            (100, day(-350), Some(day(15))),
            (50, day(-340), Some(day(25))),
            (-120, day(-10), None),
            (70, day(-5), Some(day(360))),
        ];
        assert_eq!(
            expiring_points(&ledger, now, Duration::days(30)),
            (30, Some(day(25)))
        );
        assert_eq!(expiring_points(&ledger, now, Duration::days(10)), (0, None));
    }
}
