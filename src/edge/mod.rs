//! The edge: listening sockets, TLS, Host and client-IP policy, request limits, redirects.
//!
//! Everything a request meets before a handler. The edge knows nothing about the database
//! or chat; it hands requests carrying a [`policy::ClientIp`] to the routers built in `api`.

mod dormant;
pub mod drain;
pub mod idle;
pub mod limits;
pub mod listener;
pub mod local_ca;
pub mod per_ip;
pub mod policy;
pub mod redirect;
pub mod tls;
pub mod trust;
