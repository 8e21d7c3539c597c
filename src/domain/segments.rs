//! Automatic segments: RFM quintile scoring with named segments, and rule-based segments (VIP
//! by lifetime value, New, Dormant). Pure: the quintile cut points are computed over the whole
//! customer base by the segment pass and handed in.

use serde::{Deserialize, Serialize};

/// Lifetime value from which a customer is a VIP, in cents (about the top 5% of the seeded base).
pub const VIP_LIFETIME_VALUE_CENTS: i64 = 1_000_000;
/// A customer is New for this many days after signing up.
pub const NEW_CUSTOMER_DAYS: i64 = 30;
/// A customer with orders but none in this many days is Dormant.
pub const DORMANT_DAYS: i64 = 180;

/// The names of every automatic segment, as stored in `customer_segments`.
pub const RFM_SEGMENTS: [&str; 9] = [
    "Champions",
    "Loyal",
    "Potential Loyalists",
    "New Customers",
    "Can't Lose Them",
    "At Risk",
    "Hibernating",
    "Lost",
    "Need Attention",
];
pub const RULE_SEGMENTS: [&str; 3] = ["VIP", "New", "Dormant"];

/// Quintile cut points (the 20th, 40th, 60th and 80th percentiles) of each RFM dimension over
/// customers with at least one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quintiles {
    pub recency_days: [f64; 4],
    pub frequency: [f64; 4],
    pub monetary_cents: [f64; 4],
}

/// 1–5: how many cut points the value is above (or, for recency, below: recent is good).
fn score(value: f64, cuts: &[f64; 4], lower_is_better: bool) -> u8 {
    let above = cuts.iter().filter(|c| value > **c).count() as u8;
    if lower_is_better {
        5 - above
    } else {
        1 + above
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rfm {
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
}

pub fn rfm(
    days_since_last_order: i64,
    order_count: i64,
    lifetime_value_cents: i64,
    q: &Quintiles,
) -> Rfm {
    Rfm {
        recency: score(days_since_last_order as f64, &q.recency_days, true),
        frequency: score(order_count as f64, &q.frequency, false),
        monetary: score(lifetime_value_cents as f64, &q.monetary_cents, false),
    }
}

/// The named RFM segment of a score (rules checked in order, first match wins).
pub fn rfm_segment(s: Rfm) -> &'static str {
    let Rfm {
        recency: r,
        frequency: f,
        monetary: m,
    } = s;
    if r >= 4 && f >= 4 && m >= 4 {
        "Champions"
    } else if r <= 1 && f >= 4 && m >= 4 {
        "Can't Lose Them"
    } else if r <= 2 && f >= 3 {
        "At Risk"
    } else if r >= 3 && f >= 4 {
        "Loyal"
    } else if r >= 4 && f == 1 {
        "New Customers"
    } else if r >= 4 && f <= 3 {
        "Potential Loyalists"
    } else if r == 2 && f <= 2 {
        "Hibernating"
    } else if r <= 1 && f <= 2 {
        "Lost"
    } else {
        "Need Attention"
    }
}

/// What a customer's automatic segments are decided from.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentFacts {
    pub days_since_signup: i64,
    pub days_since_last_order: Option<i64>,
    pub order_count: i64,
    pub lifetime_value_cents: i64,
}

/// Every automatic segment the customer belongs to: at most one RFM segment (only customers
/// with an order are scored) plus any rule segments.
pub fn automatic_segments(f: &SegmentFacts, q: &Quintiles) -> Vec<&'static str> {
    let mut out = Vec::new();
    if let Some(days) = f.days_since_last_order.filter(|_| f.order_count > 0) {
        out.push(rfm_segment(rfm(
            days,
            f.order_count,
            f.lifetime_value_cents,
            q,
        )));
        if days >= DORMANT_DAYS {
            out.push("Dormant");
        }
    }
    if f.lifetime_value_cents >= VIP_LIFETIME_VALUE_CENTS {
        out.push("VIP");
    }
    if f.days_since_signup <= NEW_CUSTOMER_DAYS {
        out.push("New");
    }
    out
}

/// The percentile cut points of a sample (linear interpolation, as `percentile_cont`).
pub fn cut_points(mut values: Vec<f64>) -> [f64; 4] {
    if values.is_empty() {
        return [0.0; 4];
    }
    values.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let pos = p * (values.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
    };
    [at(0.2), at(0.4), at(0.6), at(0.8)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q() -> Quintiles {
        Quintiles {
            recency_days: [20.0, 60.0, 120.0, 250.0],
            frequency: [1.0, 3.0, 6.0, 12.0],
            monetary_cents: [5_000.0, 20_000.0, 60_000.0, 150_000.0],
        }
    }

    #[test]
    fn named_segments() {
        let seg = |d, n, m| rfm_segment(rfm(d, n, m, &q()));
        assert_eq!(seg(5, 30, 900_000), "Champions");
        assert_eq!(seg(400, 30, 900_000), "Can't Lose Them");
        assert_eq!(seg(200, 8, 50_000), "At Risk");
        assert_eq!(seg(5, 1, 3_000), "New Customers");
        assert_eq!(seg(400, 1, 1_000), "Lost");
        assert_eq!(seg(150, 1, 1_000), "Hibernating");
    }

    #[test]
    fn rules() {
        let facts = SegmentFacts {
            days_since_signup: 10,
            days_since_last_order: Some(200),
            order_count: 2,
            lifetime_value_cents: 1_200_000,
        };
        let s = automatic_segments(&facts, &q());
        assert!(
            s.contains(&"VIP") && s.contains(&"New") && s.contains(&"Dormant"),
            "{s:?}"
        );
        let never = SegmentFacts {
            days_since_signup: 400,
            days_since_last_order: None,
            order_count: 0,
            lifetime_value_cents: 0,
        };
        assert!(automatic_segments(&never, &q()).is_empty());
    }

    #[test]
    fn percentiles_interpolate() {
        assert_eq!(
            cut_points((1..=5).map(f64::from).collect()),
            [1.8, 2.6, 3.4, 4.2]
        );
        assert_eq!(cut_points(vec![]), [0.0; 4]);
    }

    proptest! {
        #[test]
        fn scores_are_1_to_5_and_segments_named(d in 0i64..3_000, n in 1i64..300, m in 0i64..10_000_000) {
            let s = rfm(d, n, m, &q());
            for v in [s.recency, s.frequency, s.monetary] {
                prop_assert!((1..=5).contains(&v));
            }
            prop_assert!(RFM_SEGMENTS.contains(&rfm_segment(s)));
        }

        #[test]
        fn more_recent_never_scores_lower(a in 0i64..3_000, b in 0i64..3_000) {
            let (recent, older) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(rfm(recent, 3, 1_000, &q()).recency >= rfm(older, 3, 1_000, &q()).recency);
        }
    }
}
