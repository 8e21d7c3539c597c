//! Pure rules of the product, free of I/O: roles and permissions, masking of personal data,
//! loyalty tiers.

pub mod loyalty;
pub mod masking;
pub mod roles;
