//! Purchase metrics of one customer, computed from their orders: the numbers behind the
//! metrics slice, the health score and churn risk. Revenue orders are paid, shipped or
//! delivered (the same rule as `customer_stats`).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::db::enums::OrderStatus;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderFact {
    pub status: OrderStatus,
    pub total_cents: i64,
    pub placed_at: DateTime<Utc>,
}

pub fn is_revenue(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered
    )
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Metrics {
    pub lifetime_value_cents: i64,
    /// Revenue orders (paid, shipped, delivered).
    pub order_count: i64,
    pub average_order_value_cents: i64,
    pub first_order_at: Option<DateTime<Utc>>,
    pub last_order_at: Option<DateTime<Utc>>,
    pub days_since_last_order: Option<i64>,
    /// Revenue orders per 30 days between the first order and today (whole days).
    pub orders_per_month: Option<f64>,
    /// Median days between consecutive revenue orders (the customer's own rhythm).
    pub median_days_between_orders: Option<f64>,
    /// Refunded orders over refunded plus revenue orders, 0–1.
    pub refund_rate: f64,
    /// Last order plus the customer's median interval; null with fewer than two orders.
    pub predicted_next_order_at: Option<DateTime<Utc>>,
    pub orders_last_90_days: i64,
    pub orders_previous_90_days: i64,
    pub orders_last_365_days: i64,
}

pub fn compute(orders: &[OrderFact], now: DateTime<Utc>) -> Metrics {
    let mut revenue: Vec<&OrderFact> = orders.iter().filter(|o| is_revenue(o.status)).collect();
    revenue.sort_by_key(|o| o.placed_at);
    let lifetime_value_cents: i64 = revenue.iter().map(|o| o.total_cents).sum();
    let order_count = revenue.len() as i64;
    let average_order_value_cents = if order_count == 0 {
        0
    } else {
        (lifetime_value_cents as f64 / order_count as f64).round() as i64
    };
    let first_order_at = revenue.first().map(|o| o.placed_at);
    let last_order_at = revenue.last().map(|o| o.placed_at);
    let days_since_last_order = last_order_at.map(|t| (now - t).num_days().max(0));
    let orders_per_month = first_order_at.map(|first| {
        // Whole days, so the figure holds still within a day: views computed at different
        // moments of the same day agree (live hubs only recompute on change events).
        let months = ((now - first).num_days() as f64 / 30.0).max(1.0);
        order_count as f64 / months
    });
    let mut gaps: Vec<f64> = revenue
        .windows(2)
        .map(|w| (w[1].placed_at - w[0].placed_at).num_seconds() as f64 / 86_400.0)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let median_days_between_orders = match gaps.len() {
        0 => None,
        n if n % 2 == 1 => Some(gaps[n / 2]),
        n => Some((gaps[n / 2 - 1] + gaps[n / 2]) / 2.0),
    };
    let refunded = orders
        .iter()
        .filter(|o| o.status == OrderStatus::Refunded)
        .count() as f64;
    let refund_rate = if refunded == 0.0 {
        0.0
    } else {
        refunded / (refunded + order_count as f64)
    };
    let predicted_next_order_at = match (last_order_at, median_days_between_orders) {
        (Some(last), Some(days)) => Some(last + Duration::seconds((days * 86_400.0) as i64)),
        _ => None,
    };
    let within = |from: i64, to: i64| {
        revenue
            .iter()
            .filter(|o| {
                let age = now - o.placed_at;
                age >= Duration::days(from) && age < Duration::days(to)
            })
            .count() as i64
    };
    Metrics {
        lifetime_value_cents,
        order_count,
        average_order_value_cents,
        first_order_at,
        last_order_at,
        days_since_last_order,
        orders_per_month,
        median_days_between_orders,
        refund_rate,
        predicted_next_order_at,
        orders_last_90_days: within(0, 90),
        orders_previous_90_days: within(90, 180),
        orders_last_365_days: within(0, 365),
    }
}

#[cfg(test)]
pub mod strategies {
    use super::*;
    use proptest::prelude::*;

    pub fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
    }

    pub fn status() -> impl Strategy<Value = OrderStatus> {
        proptest::sample::select(OrderStatus::ALL.to_vec())
    }

    pub fn order() -> impl Strategy<Value = OrderFact> {
        (status(), 0i64..500_000, 0i64..2_000 * 86_400).prop_map(
            |(status, total_cents, secs_ago)| OrderFact {
                status,
                total_cents,
                placed_at: now() - Duration::seconds(secs_ago),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::strategies::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_simple_history() {
        let at = |days: i64| now() - Duration::days(days);
        let orders = [
            OrderFact {
                status: OrderStatus::Delivered,
                total_cents: 1_000,
                placed_at: at(100),
            },
            OrderFact {
                status: OrderStatus::Delivered,
                total_cents: 3_000,
                placed_at: at(70),
            },
            OrderFact {
                status: OrderStatus::Paid,
                total_cents: 2_000,
                placed_at: at(10),
            },
            OrderFact {
                status: OrderStatus::Refunded,
                total_cents: 9_000,
                placed_at: at(50),
            },
            OrderFact {
                status: OrderStatus::Pending,
                total_cents: 500,
                placed_at: at(1),
            },
        ];
        let m = compute(&orders, now());
        assert_eq!(
            (
                m.lifetime_value_cents,
                m.order_count,
                m.average_order_value_cents
            ),
            (6_000, 3, 2_000)
        );
        assert_eq!(m.days_since_last_order, Some(10));
        assert_eq!(m.median_days_between_orders, Some(45.0));
        assert_eq!(m.predicted_next_order_at, Some(at(10) + Duration::days(45)));
        assert_eq!(m.refund_rate, 0.25);
        assert_eq!((m.orders_last_90_days, m.orders_previous_90_days), (2, 1));
    }

    #[test]
    fn no_orders() {
        let m = compute(&[], now());
        assert_eq!(m.order_count, 0);
        assert_eq!(m.last_order_at, None);
        assert_eq!(m.predicted_next_order_at, None);
        assert_eq!(m.refund_rate, 0.0);
    }

    proptest! {
        /// The metrics equal a straightforward recomputation over the same orders.
        #[test]
        fn metrics_match_a_reference(orders in proptest::collection::vec(order(), 0..60)) {
            let m = compute(&orders, now());
            let mut ltv = 0i64;
            let mut n = 0i64;
            let mut first: Option<DateTime<Utc>> = None;
            let mut last: Option<DateTime<Utc>> = None;
            for o in &orders {
                if matches!(o.status, OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered) {
                    ltv += o.total_cents;
                    n += 1;
                    first = Some(first.map_or(o.placed_at, |f| f.min(o.placed_at)));
                    last = Some(last.map_or(o.placed_at, |l| l.max(o.placed_at)));
                }
            }
            prop_assert_eq!(m.lifetime_value_cents, ltv);
            prop_assert_eq!(m.order_count, n);
            prop_assert_eq!(m.first_order_at, first);
            prop_assert_eq!(m.last_order_at, last);
            if n > 0 {
                prop_assert!((m.average_order_value_cents as f64 - ltv as f64 / n as f64).abs() <= 0.5);
            }
            prop_assert!((0.0..=1.0).contains(&m.refund_rate));
            prop_assert!(m.orders_last_90_days + m.orders_previous_90_days <= m.orders_last_365_days);
            prop_assert!(m.orders_last_365_days <= n);
        }
    }
}
