//! Identity's rules, free of HTTP and SQL: parsing of inputs, password hashing, secrets,
//! lockout arithmetic and the system roles.

pub mod email;
pub mod lockout;
pub mod names;
pub mod password;
pub mod secrets;
pub mod system_roles;
