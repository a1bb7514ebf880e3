//! The HTTP server: HTTP/1.1 connections with a cap on how many are open, a timeout for
//! request heads (which also closes kept-alive connections left idle), a bounded head size, and
//! a shutdown that ends within its grace period whatever clients do.
//!
//! `main` and the tests run the same server, so the limits are tested as they are deployed.

use super::limits::{ClientAddr, ServerLimits};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// What a connection over the cap is told before it is closed.
fn busy() -> Vec<u8> {
    let body = r#"{"error":{"code":"busy","message":"too many connections; retry in a moment"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets requests
/// in flight finish for at most `limits.shutdown_grace`, and closes what is left.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192))
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (mut stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, or a connection reset before accept: wait a
                        // moment rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    connections.spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&busy())).await;
                    });
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let service = app.clone().map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ClientAddr(peer));
                    req
                });
                let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
                let watched = graceful.watch(connection);
                connections.spawn(async move {
                    let _ = watched.await;
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(
        connections = open,
        "stopped accepting; finishing requests in flight"
    );
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            left = connections.len(),
            "grace period over: closing the connections still open"
        );
    }
    connections.shutdown().await;
}
