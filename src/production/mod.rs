//! Production dependencies. STUB.
pub mod child;
pub mod identity;
