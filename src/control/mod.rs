//! The control socket: a Unix socket per mount that lets the CLI and other
//! programs read status and stats, change the mount table, flush staged
//! writes and stop the daemon while it runs.
//!
//! - [`protocol`]: the typed, versioned wire protocol (the one place its
//!   shapes are defined; `docs/CONTROL.md` documents it);
//! - [`server`]: `run(listener, state, shutdown)`, peer-uid check, line framing;
//! - [`state`]: what requests are served from, and their dispatch;
//! - [`table`]: the live mount table (also used by SIGHUP reload);
//! - [`buckets`]: the `bucket.*` methods over the live table;
//! - [`client`]: a blocking client for the CLI;
//! - [`paths`]: where sockets live; [`redact`]: hiding secrets;
//! - [`prometheus`] and [`http`]: the optional metrics endpoint.

mod accept;
pub mod buckets;
pub mod client;
pub mod http;
mod ipfs;
pub mod paths;
pub mod prometheus;
pub mod protocol;
pub mod redact;
pub mod server;
pub mod state;
pub mod table;

pub use client::{Client, ClientError};
pub use protocol::{Request, PROTOCOL_VERSION};
pub use state::{ControlState, StopReason, Stopper};
pub use table::LiveTable;
