//! placeholder
pub mod local_ca;
pub mod tls;
