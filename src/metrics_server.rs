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
    describe();
    Some(handle)
}

/// Every metric's `# HELP` (Prometheus tooling, `promtool check metrics` among it, expects one).
fn describe() {
    use metrics::{describe_counter as c, describe_gauge as g, describe_histogram as h};
    c!(
        "trailwatch_records_total",
        "Transport records read (Kinesis, Firehose, Lambda), by shard"
    );
    c!("trailwatch_events_total", "CloudTrail events decoded");
    c!(
        "trailwatch_alerts_total",
        "Alerts raised (siem stream), by rule"
    );
    c!(
        "trailwatch_alerts_lost_total",
        "Alerts given up without being delivered or spooled (the state is then no longer saved)"
    );
    c!(
        "trailwatch_dead_letters_total",
        "Records that could not be read (written to the dead-letter file with position and reason)"
    );
    c!(
        "trailwatch_kinesis_iterator_errors_total",
        "GetShardIterator calls that failed (a saved position Kinesis refuses shows here, and as an ERROR after 5 tries)"
    );
    c!(
        "trailwatch_sink_spool_relinked_total",
        "Times a sink's spool was found removed while in use and made again, by sink"
    );
    c!(
        "trailwatch_sink_spool_lost_total",
        "Spooled items lost because their segment was removed (those of the open segment are kept), by sink"
    );
    g!(
        "trailwatch_sink_broken",
        "1 while a sink's requests fail as never retryable (401, 403, 404, 410: its items wait in the spool; /readyz says not ready), by sink"
    );
    g!(
        "trailwatch_sink_spool_unwritable",
        "1 while a sink's spool cannot be written (new items are not acknowledged; /readyz says not ready), by sink"
    );
    c!(
        "trailwatch_event_clock_jumps_refused_total",
        "replay/backtest: event times that moved no state clock (far ahead of it and not confirmed by a second event): one record dated 2099 moves nothing"
    );
    c!(
        "trailwatch_event_time_clamped_total",
        "run/serve/lambda: events dated more than dedup.max_clock_skew ahead of their arrival (judged on their own time; the health watch and correlation windows take the arrival time)"
    );
    c!(
        "trailwatch_org_first_read_fallbacks_total",
        "Starts where the organization could not be read within organization.first_read_timeout and no tree was saved (events judged on the config policy until it is read)"
    );
    c!(
        "trailwatch_org_rejudged_events_total",
        "Events judged on the config policy at start, judged again once the organization was read"
    );
    c!(
        "trailwatch_org_rejudge_dropped_total",
        "Events judged on the config policy at start that could not be kept to be judged again (over 200,000 events or 256 MiB)"
    );
    h!(
        "trailwatch_checkpoint_seconds",
        "Time to write one checkpoint (state file and id log), seconds"
    );
    c!(
        "trailwatch_checkpoint_bytes_total",
        "Bytes written by checkpoints, by file (state: the JSON; ids: the id log)"
    );
    c!(
        "trailwatch_checkpoint_id_log_rewrites_total",
        "Checkpoints that wrote the whole id log anew (the first after a start, and compactions)"
    );
    c!(
        "trailwatch_state_ids_damaged_total",
        "Starts whose id log was damaged (the ids before the damage were kept)"
    );
    c!(
        "trailwatch_incomplete_total",
        "What a command that ends (replay, backtest, match, explain) did not do, by command and what: dead letters, unread inputs, unlisted prefixes, dedup ids forgotten early, items left spooled or not accepted"
    );
    c!(
        "trailwatch_notify_items_total",
        "Items of the shaped notify stream"
    );
    c!(
        "trailwatch_shaping_alerts_in_total",
        "Alerts that entered shaping"
    );
    c!(
        "trailwatch_shaping_suppressed_total",
        "Alerts folded into updates or digests by shaping"
    );
    c!(
        "trailwatch_sigma_correlation_total",
        "Sigma correlation windows: matches that joined one (hits), that lacked a group-by value (no_group) or came too late (late), groups dropped to stay bounded (evicted), alerts (fired)"
    );
    c!(
        "trailwatch_unrouted_total",
        "Items no route took, by stream"
    );
    h!(
        "trailwatch_event_to_alert_seconds",
        "Event time to alert, seconds (arrival-time roads)"
    );
    c!(
        "trailwatch_config_reloads_total",
        "Config reloads, by result"
    );
    g!(
        "trailwatch_millis_behind_latest",
        "Kinesis GetRecords MillisBehindLatest, by shard"
    );
    g!(
        "trailwatch_shards_owned",
        "Kinesis shards this worker reads"
    );
    c!(
        "trailwatch_getrecords_errors_total",
        "GetRecords calls that failed, by kind"
    );
    g!(
        "trailwatch_checkpoint_last_success_timestamp_seconds",
        "When the checkpoint was last written (Unix seconds)"
    );
    c!(
        "trailwatch_checkpoint_errors_total",
        "Checkpoint writes that failed"
    );
    g!(
        "trailwatch_leases_owned",
        "Shard leases this worker holds (DynamoDB leases)"
    );
    c!(
        "trailwatch_leases_taken_total",
        "Shard leases taken (new, expired or stolen)"
    );
    c!(
        "trailwatch_leases_lost_total",
        "Shard leases lost to another worker"
    );
    c!(
        "trailwatch_firehose_requests_total",
        "Firehose HTTP endpoint requests, by status"
    );
    g!(
        "trailwatch_firehose_connections_open",
        "Open connections to the Firehose endpoint"
    );
    c!(
        "trailwatch_firehose_connections_refused_total",
        "Connections closed at once (over max_connections)"
    );
    c!(
        "trailwatch_firehose_connections_timed_out_total",
        "Connections closed by a timeout, by timeout"
    );
    g!(
        "trailwatch_org_accounts",
        "Accounts in the organization as last read"
    );
    g!(
        "trailwatch_org_last_refresh_timestamp_seconds",
        "When AWS Organizations was last read successfully (Unix seconds)"
    );
    c!(
        "trailwatch_org_refresh_errors_total",
        "Reads of AWS Organizations that failed"
    );
    c!("trailwatch_sink_sent_total", "Items delivered, by sink");
    c!("trailwatch_sink_retries_total", "Delivery retries, by sink");
    c!(
        "trailwatch_sink_failures_total",
        "Delivery attempts that failed, by sink and kind"
    );
    c!(
        "trailwatch_sink_rejected_total",
        "Items the destination rejected (kept in rejected/), by sink"
    );
    c!(
        "trailwatch_sink_spooled_total",
        "Items written to the durable spool, by sink"
    );
    g!(
        "trailwatch_sink_spool_depth",
        "Items waiting in the spool, by sink"
    );
    g!(
        "trailwatch_sink_spool_oldest_age_seconds",
        "Age of the oldest spooled item, by sink"
    );
    c!(
        "trailwatch_sink_spool_write_errors_total",
        "Spool appends that failed (disk full…), by sink"
    );
    c!(
        "trailwatch_sink_spool_unreadable_total",
        "Spool segments that could not be read, by sink"
    );
    c!(
        "trailwatch_sink_spool_corrupt_total",
        "Damaged spool regions quarantined, by sink"
    );
    c!(
        "trailwatch_sink_spool_corrupt_bytes_total",
        "Bytes of damaged spool regions quarantined, by sink"
    );
    c!(
        "trailwatch_sink_spool_cursor_invalid_total",
        "Spool cursors that failed their checksum, by sink"
    );
    c!(
        "trailwatch_sink_journal_errors_total",
        "Delivered-ids journal writes that failed, by sink"
    );
    c!(
        "trailwatch_sink_repeats_skipped_total",
        "Items not sent again because the journal says they were delivered, by sink"
    );
    h!(
        "trailwatch_sink_request_seconds",
        "Duration of delivery requests, by sink"
    );
    h!(
        "trailwatch_sink_accept_seconds",
        "Submission to acceptance (delivered or spooled), by sink"
    );
    g!("trailwatch_account_last_event_timestamp_seconds", "Event time of the latest event, by account (the busiest health.metrics_accounts accounts, then other)");
    h!("trailwatch_event_lag_seconds", "Event time to arrival, seconds, by account (the busiest health.metrics_accounts accounts, then other)");
    g!(
        "trailwatch_feed_silent",
        "1 while the whole feed is silent ([health])"
    );
    g!(
        "trailwatch_feed_silent_accounts",
        "Accounts the feed-health watch calls silent"
    );
    c!(
        "trailwatch_feed_untracked_total",
        "Accounts and account-regions not watched because health.max_keys was reached"
    );
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
