//! Churn risk: a level from low to critical, from how overdue the customer is against their
//! own ordering rhythm, falling frequency, open or unhappy tickets and unsubscribes — with
//! the reasons that raised it.

use serde::{Deserialize, Serialize};

use crate::db::enums::ChurnRiskLevel;

#[derive(Debug, Clone, PartialEq)]
pub struct ChurnInputs {
    pub days_since_signup: i64,
    pub days_since_last_order: Option<i64>,
    pub median_days_between_orders: Option<f64>,
    pub orders_last_90_days: i64,
    pub orders_previous_90_days: i64,
    pub open_tickets: i64,
    pub average_satisfaction: Option<f64>,
    pub unsubscribed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChurnRisk {
    pub level: ChurnRiskLevel,
    /// Risk points behind the level (0–1 low, 2–3 medium, 4–5 high, 6+ critical).
    pub points: u32,
    pub reasons: Vec<String>,
}

/// The interval assumed for customers with fewer than two orders.
const DEFAULT_RHYTHM_DAYS: f64 = 60.0;

pub fn assess(i: &ChurnInputs) -> ChurnRisk {
    let mut points = 0u32;
    let mut reasons = Vec::new();
    match i.days_since_last_order {
        None if i.days_since_signup > 30 => {
            points += 2;
            reasons.push(format!(
                "never ordered in {} days since signing up",
                i.days_since_signup
            ));
        }
        None => {}
        Some(days) => {
            let rhythm = i
                .median_days_between_orders
                .unwrap_or(DEFAULT_RHYTHM_DAYS)
                .max(7.0);
            let overdue = days as f64 / rhythm;
            if overdue > 3.0 {
                points += 4;
                reasons.push(format!(
                    "no order in {days} days, {overdue:.1}× their usual {rhythm:.0}-day rhythm"
                ));
            } else if overdue > 1.5 {
                points += 2;
                reasons.push(format!(
                    "no order in {days} days, {overdue:.1}× their usual {rhythm:.0}-day rhythm"
                ));
            }
        }
    }
    if i.orders_previous_90_days >= 2 && i.orders_last_90_days * 2 < i.orders_previous_90_days {
        points += 1;
        reasons.push(format!(
            "ordering less often: {} orders in the last 90 days against {} in the 90 before",
            i.orders_last_90_days, i.orders_previous_90_days
        ));
    }
    if i.open_tickets > 0 {
        points += 1;
        reasons.push(format!("{} open support ticket(s)", i.open_tickets));
    }
    if let Some(s) = i.average_satisfaction.filter(|s| *s < 3.0) {
        points += 2;
        reasons.push(format!(
            "unhappy with support (average satisfaction {s:.1}/5)"
        ));
    }
    if i.unsubscribed {
        points += 1;
        reasons.push("unsubscribed from a marketing channel".to_owned());
    }
    let level = match points {
        0..=1 => ChurnRiskLevel::Low,
        2..=3 => ChurnRiskLevel::Medium,
        4..=5 => ChurnRiskLevel::High,
        _ => ChurnRiskLevel::Critical,
    };
    ChurnRisk {
        level,
        points,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn calm() -> ChurnInputs {
        ChurnInputs {
            days_since_signup: 400,
            days_since_last_order: Some(10),
            median_days_between_orders: Some(30.0),
            orders_last_90_days: 3,
            orders_previous_90_days: 3,
            open_tickets: 0,
            average_satisfaction: Some(4.5),
            unsubscribed: false,
        }
    }

    #[test]
    fn levels_and_reasons() {
        assert_eq!(assess(&calm()).level, ChurnRiskLevel::Low);
        assert!(assess(&calm()).reasons.is_empty());
        let lapsed = ChurnInputs {
            days_since_last_order: Some(200),
            orders_last_90_days: 0,
            ..calm()
        };
        let r = assess(&lapsed);
        assert_eq!(r.level, ChurnRiskLevel::High);
        assert!(r.reasons.iter().any(|s| s.contains("200 days")), "{r:?}");
        let worst = ChurnInputs {
            open_tickets: 2,
            average_satisfaction: Some(1.5),
            unsubscribed: true,
            ..lapsed
        };
        assert_eq!(assess(&worst).level, ChurnRiskLevel::Critical);
    }

    proptest! {
        /// Every point of risk comes with a reason, and the level never falls as a customer
        /// goes longer without ordering.
        #[test]
        fn reasons_explain_points(days in 0i64..2_000, extra in 0i64..2_000, tickets in 0i64..5, unsub in any::<bool>()) {
            let base = ChurnInputs { days_since_last_order: Some(days), open_tickets: tickets, unsubscribed: unsub, ..calm() };
            let r = assess(&base);
            prop_assert_eq!(r.points == 0, r.reasons.is_empty());
            let later = assess(&ChurnInputs { days_since_last_order: Some(days + extra), ..base });
            prop_assert!(later.level >= r.level);
        }
    }
}
