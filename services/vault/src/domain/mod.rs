//! The vault's rules, free of HTTP and storage: value types, credential types and the checks
//! values pass.

pub mod types;
pub mod value_types;
pub mod values;
