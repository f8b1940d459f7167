//! Test support, shared by every module of the test crate: start the real `roost` binary on
//! 127.0.0.1 with ephemeral ports and a temp data dir (`daemon`), talk to it over TLS like a
//! client would, trusting the CA it generated (`tls`), as a signed-in user of its API (`api`)
//! and its gateway (`gateway`), with the stand-in or the real LiveKit beside it (`livekit`) and
//! a webhook receiver to deliver to (`receiver`).
//!
//! Nothing here sleeps to let things settle: every wait polls a condition against a deadline.
//! Nothing here changes what the test process shares (environment, current directory, umask):
//! tests of every module run side by side in it.

mod api;
mod daemon;
mod gateway;
mod livekit;
mod receiver;
mod tls;

pub use api::*;
pub use daemon::*;
pub use gateway::*;
pub use livekit::*;
pub use receiver::*;
pub use tls::*;
