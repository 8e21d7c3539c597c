//! Pure rules of the product, free of I/O: roles and permissions, masking of personal data,
//! loyalty tiers, purchase metrics, health score, churn risk, automatic segments and the
//! timeline's order.

pub mod churn;
pub mod health;
pub mod loyalty;
pub mod masking;
pub mod metrics;
pub mod money;
pub mod roles;
pub mod segments;
