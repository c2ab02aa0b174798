//! The accept loop shared by the control socket and the metrics endpoint:
//! one task per connection, a pause after a failed accept, and a stop when
//! `shutdown` completes.

use std::future::Future;
use std::time::Duration;

/// Pause after a failed accept (e.g. EMFILE) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections with `accept` and runs `serve` on each in its own
/// task, until `shutdown` completes. `what` names the listener in logs.
pub async fn serve_until<S, A, AF, H, HF>(
    what: &'static str,
    mut accept: A,
    serve: H,
    shutdown: impl Future<Output = ()>,
) where
    A: FnMut() -> AF,
    AF: Future<Output = std::io::Result<S>>,
    H: Fn(S) -> HF,
    HF: Future<Output = std::io::Result<()>> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept() => match accepted {
                Ok(stream) => {
                    let conn = serve(stream);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "{what} connection ended");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{what} accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
}
