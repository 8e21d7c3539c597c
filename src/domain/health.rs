//! The health score: an integer 0–100 summed from weighted factors, each reported with its
//! contribution and a sentence saying why, so an admin can see what drives it.

use serde::{Deserialize, Serialize};

use crate::db::enums::LoyaltyTier;

/// What the score is computed from; gathered by the view loaders.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthInputs {
    pub days_since_last_order: Option<i64>,
    pub orders_last_365_days: i64,
    pub lifetime_value_cents: i64,
    pub campaign_open_rate: Option<f64>,
    pub sessions_last_30_days: i64,
    pub open_tickets: i64,
    pub average_satisfaction: Option<f64>,
    pub loyalty_tier: Option<LoyaltyTier>,
    pub loyalty_active_last_90_days: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Factor {
    /// recency, frequency, monetary, engagement, support, loyalty
    pub factor: String,
    pub weight: f64,
    /// Between 0 and `weight`.
    pub contribution: f64,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthScore {
    pub score: i16,
    pub factors: Vec<Factor>,
}

pub const WEIGHTS: [(&str, f64); 6] = [
    ("recency", 25.0),
    ("frequency", 20.0),
    ("monetary", 20.0),
    ("engagement", 15.0),
    ("support", 10.0),
    ("loyalty", 10.0),
];

/// Full recency credit up to this many days since the last order, none after `RECENCY_ZERO_DAYS`.
const RECENCY_FULL_DAYS: f64 = 30.0;
const RECENCY_ZERO_DAYS: f64 = 365.0;

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn recency_share(days_since_last_order: Option<i64>) -> f64 {
    match days_since_last_order {
        None => 0.0,
        Some(d) => {
            let d = d.max(0) as f64;
            if d <= RECENCY_FULL_DAYS {
                1.0
            } else {
                ((RECENCY_ZERO_DAYS - d) / (RECENCY_ZERO_DAYS - RECENCY_FULL_DAYS)).clamp(0.0, 1.0)
            }
        }
    }
}

pub fn compute(i: &HealthInputs) -> HealthScore {
    let recency = recency_share(i.days_since_last_order);
    let recency_why = match i.days_since_last_order {
        None => "no order yet".to_owned(),
        Some(d) => format!("last order {d} days ago"),
    };
    let frequency = (i.orders_last_365_days as f64 / 12.0).clamp(0.0, 1.0);
    let dollars = i.lifetime_value_cents.max(0) as f64 / 100.0;
    let monetary = ((dollars + 1.0).log10() / 5_001f64.log10()).clamp(0.0, 1.0);
    let open_rate = i.campaign_open_rate.unwrap_or(0.0).clamp(0.0, 1.0);
    let browsing = (i.sessions_last_30_days as f64 / 4.0).clamp(0.0, 1.0);
    let engagement = (2.0 * open_rate + browsing) / 3.0;
    let mut support = 1.0 - 0.3 * i.open_tickets.max(0) as f64;
    let mut support_why = format!("{} open ticket(s)", i.open_tickets);
    if let Some(s) = i.average_satisfaction {
        support_why.push_str(&format!(", average satisfaction {s:.1}/5"));
        if s < 3.0 {
            support -= 0.4;
        }
    }
    let support = support.clamp(0.0, 1.0);
    let tier_bonus: f64 = match i.loyalty_tier {
        None => 0.0,
        Some(LoyaltyTier::Bronze) => 0.3,
        Some(LoyaltyTier::Silver) => 0.4,
        Some(LoyaltyTier::Gold) => 0.5,
        Some(LoyaltyTier::Platinum) => 0.6,
    };
    let loyalty = (tier_bonus
        + if i.loyalty_active_last_90_days {
            0.4
        } else {
            0.0
        })
    .clamp(0.0, 1.0);
    let loyalty_why = match i.loyalty_tier {
        None => "not in the loyalty programme".to_owned(),
        Some(t) => format!(
            "{t} member, {}",
            if i.loyalty_active_last_90_days {
                "active in the last 90 days"
            } else {
                "no points activity in 90 days"
            }
        ),
    };
    let shares = [
        (recency, recency_why),
        (
            frequency,
            format!("{} orders in the last 12 months", i.orders_last_365_days),
        ),
        (monetary, format!("lifetime value ${dollars:.2}")),
        (
            engagement,
            format!(
                "opens {:.0}% of campaigns, {} visits in 30 days",
                open_rate * 100.0,
                i.sessions_last_30_days
            ),
        ),
        (support, support_why),
        (loyalty, loyalty_why),
    ];
    let factors: Vec<Factor> = WEIGHTS
        .iter()
        .zip(shares)
        .map(|((factor, weight), (share, explanation))| Factor {
            factor: (*factor).to_owned(),
            weight: *weight,
            contribution: round1(share * weight),
            explanation,
        })
        .collect();
    let total: f64 = factors.iter().map(|f| f.contribution).sum();
    HealthScore {
        score: total.round().clamp(0.0, 100.0) as i16,
        factors,
    }
}

#[cfg(test)]
pub mod strategies {
    use super::*;
    use proptest::prelude::*;

    pub fn inputs() -> impl Strategy<Value = HealthInputs> {
        (
            proptest::option::of(-5i64..5_000),
            0i64..400,
            -100i64..100_000_000,
            proptest::option::of(-0.5f64..1.5),
            0i64..200,
            0i64..20,
            proptest::option::of(0.0f64..6.0),
            proptest::option::of(proptest::sample::select(LoyaltyTier::ALL.to_vec())),
            any::<bool>(),
        )
            .prop_map(|(d, o, ltv, rate, s, t, sat, tier, active)| HealthInputs {
                days_since_last_order: d,
                orders_last_365_days: o,
                lifetime_value_cents: ltv,
                campaign_open_rate: rate,
                sessions_last_30_days: s,
                open_tickets: t,
                average_satisfaction: sat,
                loyalty_tier: tier,
                loyalty_active_last_90_days: active,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::strategies::inputs;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn weights_sum_to_100() {
        assert_eq!(WEIGHTS.iter().map(|(_, w)| w).sum::<f64>(), 100.0);
    }

    proptest! {
        #[test]
        fn score_and_contributions_stay_in_range(i in inputs()) {
            let h = compute(&i);
            prop_assert!((0..=100).contains(&h.score));
            prop_assert_eq!(h.factors.len(), WEIGHTS.len());
            for f in &h.factors {
                prop_assert!(f.contribution >= 0.0 && f.contribution <= f.weight, "{:?}", f);
                prop_assert!(!f.explanation.is_empty());
            }
        }

        /// A more recent last order never lowers the recency factor (or the score).
        #[test]
        fn recency_is_monotonic(i in inputs(), a in 0i64..2_000, b in 0i64..2_000) {
            let (recent, older) = if a <= b { (a, b) } else { (b, a) };
            let h_recent = compute(&HealthInputs { days_since_last_order: Some(recent), ..i.clone() });
            let h_older = compute(&HealthInputs { days_since_last_order: Some(older), ..i.clone() });
            prop_assert!(h_recent.factors[0].contribution >= h_older.factors[0].contribution);
            prop_assert!(h_recent.score >= h_older.score);
            let h_never = compute(&HealthInputs { days_since_last_order: None, ..i });
            prop_assert!(h_never.factors[0].contribution <= h_older.factors[0].contribution);
        }
    }
}
