//! systemd readiness notifications (`Type=notify`): READY=1 once the mount is
//! live, RELOADING=1/READY=1 around a SIGHUP reload, STOPPING=1 when a stop
//! begins. Without `NOTIFY_SOCKET` every call is a no-op; a failed send is
//! logged, never fatal.

use sd_notify::NotifyState;

fn send(states: &[NotifyState], what: &str) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, what, "sd_notify failed");
    }
}

/// The mount is live and serving.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)], "READY=1");
}

/// A reload began.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now], "RELOADING=1"),
        Err(e) => tracing::warn!(error = %e, "cannot read the monotonic clock for RELOADING=1"),
    }
}

/// A stop began (draining, then unmounting).
pub fn stopping(status: &str) {
    send(
        &[NotifyState::Stopping, NotifyState::Status(status)],
        "STOPPING=1",
    );
}
