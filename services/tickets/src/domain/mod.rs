//! The rules of tickets, with no I/O: the workflow, severities, SLA clocks, triage and the
//! shapes of the values a request may carry.

pub mod fields;
pub mod sla;
pub mod status;
pub mod triage;
