//! In-process rate limiting (token buckets per action family, keyed by client IP and account).
//!
//! Contract with `auth`: the authentication middleware inserts [`Account`] into a request's
//! extensions once it knows who is calling; the limiter layer (which runs after it) then
//! charges both the client IP's bucket and the account's. Nothing else reads or writes it.

/// The authenticated account behind a request, as the limiter keys it (a stable user id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account(pub String);
