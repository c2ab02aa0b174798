//! Progress of long tools (copy, search, tree walks, sync, CAR preparation):
//! the blocking work reports through a [`Reporter`]; when the client asked
//! for progress (a `progressToken` in the request), a task forwards each
//! report as an MCP `notifications/progress`, in order, and the tool waits
//! for it before replying, so every notification precedes the result.

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One report: work done, the total when known, a short message.
type Report = (f64, Option<f64>, String);

/// Where the work reports progress; a no-op when the client asked for none.
#[derive(Clone, Default)]
pub struct Reporter(Option<mpsc::UnboundedSender<Report>>);

impl Reporter {
    /// Reports `done` of `total` (when known).
    pub fn report(&self, done: f64, total: Option<f64>, message: impl Into<String>) {
        if let Some(tx) = &self.0 {
            let _ = tx.send((done, total, message.into()));
        }
    }
}

/// A reporter plus the task forwarding its reports; [`Forwarder::finish`]
/// waits until all reports are sent.
pub struct Forwarder {
    pub reporter: Reporter,
    task: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Forwards to `peer` under `token`; without a token, reports are dropped.
    pub fn new(peer: Peer<RoleServer>, token: Option<ProgressToken>) -> Forwarder {
        let Some(token) = token else {
            return Forwarder {
                reporter: Reporter::default(),
                task: None,
            };
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Report>();
        let task = tokio::spawn(async move {
            while let Some((done, total, message)) = rx.recv().await {
                let mut p = ProgressNotificationParam::new(token.clone(), done).with_message(message);
                if let Some(t) = total {
                    p = p.with_total(t);
                }
                if peer.notify_progress(p).await.is_err() {
                    break; // the client is gone; the tool's reply will fail too
                }
            }
        });
        Forwarder {
            reporter: Reporter(Some(tx)),
            task: Some(task),
        }
    }

    /// Drops the reporter and waits until every report went out.
    pub async fn finish(self) {
        drop(self.reporter);
        if let Some(t) = self.task {
            let _ = t.await;
        }
    }
}
