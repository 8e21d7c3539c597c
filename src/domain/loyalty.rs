//! Loyalty tiers: a customer's tier follows from the points they have ever earned.

use crate::db::enums::LoyaltyTier;

/// Lifetime points at which each tier starts, lowest first.
pub const TIER_THRESHOLDS: [(LoyaltyTier, i64); 4] = [
    (LoyaltyTier::Bronze, 0),
    (LoyaltyTier::Silver, 1_000),
    (LoyaltyTier::Gold, 5_000),
    (LoyaltyTier::Platinum, 20_000),
];

pub fn tier_for_lifetime_points(lifetime_points: i64) -> LoyaltyTier {
    TIER_THRESHOLDS
        .iter()
        .rev()
        .find(|(_, from)| lifetime_points >= *from)
        .map_or(LoyaltyTier::Bronze, |(tier, _)| *tier)
}

/// The next tier and the lifetime points it starts at, if there is one above `tier`.
pub fn next_tier(tier: LoyaltyTier) -> Option<(LoyaltyTier, i64)> {
    let i = TIER_THRESHOLDS.iter().position(|(t, _)| *t == tier)?;
    TIER_THRESHOLDS.get(i + 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn thresholds() {
        assert_eq!(tier_for_lifetime_points(0), LoyaltyTier::Bronze);
        assert_eq!(tier_for_lifetime_points(999), LoyaltyTier::Bronze);
        assert_eq!(tier_for_lifetime_points(1_000), LoyaltyTier::Silver);
        assert_eq!(tier_for_lifetime_points(19_999), LoyaltyTier::Gold);
        assert_eq!(tier_for_lifetime_points(20_000), LoyaltyTier::Platinum);
        assert_eq!(
            next_tier(LoyaltyTier::Gold),
            Some((LoyaltyTier::Platinum, 20_000))
        );
        assert_eq!(next_tier(LoyaltyTier::Platinum), None);
    }

    proptest! {
        #[test]
        fn tiers_never_fall_as_points_grow(a in 0i64..100_000, b in 0i64..100_000) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(tier_for_lifetime_points(lo) <= tier_for_lifetime_points(hi));
        }
    }
}
