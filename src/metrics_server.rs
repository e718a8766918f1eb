//! `/metrics` (Prometheus text), `/healthz` and `/readyz` on their own listener.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the global Prometheus recorder (once per process) and returns its handle.
pub fn install() -> Option<PrometheusHandle> {
    let buckets = [
        0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets(&buckets)
        .ok()?
        .install_recorder()
        .ok()?;
    crate::metric::describe();
    Some(handle)
}

/// Installs the recorder and serves on `addr` from a task of the current runtime; `None`
/// when the recorder cannot be installed.
pub fn spawn(
    addr: std::net::SocketAddr,
    ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Option<()> {
    let handle = install()?;
    tokio::spawn(async move {
        if let Err(e) = serve(addr, handle, ready).await {
            tracing::error!(%addr, error = %e, "metrics listener failed");
        }
    });
    Some(())
}

/// Serves until the process ends. `ready` turns true once the source works (first shard list).
pub async fn serve(
    addr: SocketAddr,
    handle: PrometheusHandle,
    ready: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "metrics and health on /metrics, /healthz, /readyz");
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let h = handle.clone();
                async move {
                    h.run_upkeep();
                    h.render()
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    let problems = crate::readiness::problems();
                    if !ready.load(Ordering::Relaxed) {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_string())
                    } else if !problems.is_empty() {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {}\n", problems.join("; ")),
                        )
                    } else {
                        (StatusCode::OK, "ready\n".to_string())
                    }
                }
            }),
        );
    axum::serve(listener, app).await
}
