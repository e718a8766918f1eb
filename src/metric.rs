//! Every metric trailwatch exports, in one place: its name (the constant the code records
//! it with), its kind and its `# HELP` text. [`describe`] gives Prometheus the HELP of each;
//! a test checks that no metric name is written anywhere else in `src/`.

/// What a metric counts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

pub const RECORDS_TOTAL: &str = "trailwatch_records_total";
pub const EVENTS_TOTAL: &str = "trailwatch_events_total";
pub const ALERTS_TOTAL: &str = "trailwatch_alerts_total";
pub const ALERTS_LOST_TOTAL: &str = "trailwatch_alerts_lost_total";
pub const DEAD_LETTERS_TOTAL: &str = "trailwatch_dead_letters_total";
pub const KINESIS_ITERATOR_ERRORS_TOTAL: &str = "trailwatch_kinesis_iterator_errors_total";
pub const KINESIS_SUBSCRIPTIONS_TOTAL: &str = "trailwatch_kinesis_subscriptions_total";
pub const KINESIS_SUBSCRIBE_ERRORS_TOTAL: &str = "trailwatch_kinesis_subscribe_errors_total";
pub const BACKFILL_OBJECTS_TOTAL: &str = "trailwatch_backfill_objects_total";
pub const BACKFILL_EVENTS_TOTAL: &str = "trailwatch_backfill_events_total";
pub const BACKFILL_UNREAD_TOTAL: &str = "trailwatch_backfill_unread_total";
pub const BACKFILL_JOBS: &str = "trailwatch_backfill_jobs";
pub const FIRST_SEEN_PAIRS: &str = "trailwatch_first_seen_pairs";
pub const FIRST_SEEN_EVICTED_TOTAL: &str = "trailwatch_first_seen_evicted_total";
pub const FIRST_SEEN_SHARED_TOTAL: &str = "trailwatch_first_seen_shared_total";
pub const BACKFILL_TAKEN_OVER_TOTAL: &str = "trailwatch_backfill_taken_over_total";
pub const FEED_GAP_CHECKS_TOTAL: &str = "trailwatch_feed_gap_checks_total";
pub const FEED_GAPS_TOTAL: &str = "trailwatch_feed_gaps_total";
pub const FEED_GAP_SECONDS_TOTAL: &str = "trailwatch_feed_gap_seconds_total";
pub const SINK_SPOOL_RELINKED_TOTAL: &str = "trailwatch_sink_spool_relinked_total";
pub const SINK_SPOOL_LOST_TOTAL: &str = "trailwatch_sink_spool_lost_total";
pub const SINK_BROKEN: &str = "trailwatch_sink_broken";
pub const SINK_SPOOL_UNWRITABLE: &str = "trailwatch_sink_spool_unwritable";
pub const EVENT_CLOCK_JUMPS_REFUSED_TOTAL: &str = "trailwatch_event_clock_jumps_refused_total";
pub const EVENT_TIME_CLAMPED_TOTAL: &str = "trailwatch_event_time_clamped_total";
pub const ORG_FIRST_READ_FALLBACKS_TOTAL: &str = "trailwatch_org_first_read_fallbacks_total";
pub const ORG_REJUDGED_EVENTS_TOTAL: &str = "trailwatch_org_rejudged_events_total";
pub const ORG_REJUDGE_DROPPED_TOTAL: &str = "trailwatch_org_rejudge_dropped_total";
pub const CHECKPOINT_SECONDS: &str = "trailwatch_checkpoint_seconds";
pub const CHECKPOINT_BYTES_TOTAL: &str = "trailwatch_checkpoint_bytes_total";
pub const CHECKPOINT_ID_LOG_REWRITES_TOTAL: &str = "trailwatch_checkpoint_id_log_rewrites_total";
pub const STATE_IDS_DAMAGED_TOTAL: &str = "trailwatch_state_ids_damaged_total";
pub const INCOMPLETE_TOTAL: &str = "trailwatch_incomplete_total";
pub const NOTIFY_ITEMS_TOTAL: &str = "trailwatch_notify_items_total";
pub const SHAPING_ALERTS_IN_TOTAL: &str = "trailwatch_shaping_alerts_in_total";
pub const SHAPING_SUPPRESSED_TOTAL: &str = "trailwatch_shaping_suppressed_total";
pub const SIGMA_CORRELATION_TOTAL: &str = "trailwatch_sigma_correlation_total";
pub const UNROUTED_TOTAL: &str = "trailwatch_unrouted_total";
pub const EVENT_TO_ALERT_SECONDS: &str = "trailwatch_event_to_alert_seconds";
pub const CONFIG_RELOADS_TOTAL: &str = "trailwatch_config_reloads_total";
pub const MILLIS_BEHIND_LATEST: &str = "trailwatch_millis_behind_latest";
pub const SHARDS_OWNED: &str = "trailwatch_shards_owned";
pub const GETRECORDS_ERRORS_TOTAL: &str = "trailwatch_getrecords_errors_total";
pub const CHECKPOINT_LAST_SUCCESS_TIMESTAMP_SECONDS: &str =
    "trailwatch_checkpoint_last_success_timestamp_seconds";
pub const CHECKPOINT_ERRORS_TOTAL: &str = "trailwatch_checkpoint_errors_total";
pub const LEASES_OWNED: &str = "trailwatch_leases_owned";
pub const LEASES_TAKEN_TOTAL: &str = "trailwatch_leases_taken_total";
pub const LEASES_LOST_TOTAL: &str = "trailwatch_leases_lost_total";
pub const FIREHOSE_REQUESTS_TOTAL: &str = "trailwatch_firehose_requests_total";
pub const FIREHOSE_CONNECTIONS_OPEN: &str = "trailwatch_firehose_connections_open";
pub const FIREHOSE_CONNECTIONS_REFUSED_TOTAL: &str =
    "trailwatch_firehose_connections_refused_total";
pub const FIREHOSE_CONNECTIONS_TIMED_OUT_TOTAL: &str =
    "trailwatch_firehose_connections_timed_out_total";
pub const ORG_ACCOUNTS: &str = "trailwatch_org_accounts";
pub const ORG_LAST_REFRESH_TIMESTAMP_SECONDS: &str =
    "trailwatch_org_last_refresh_timestamp_seconds";
pub const ORG_REFRESH_ERRORS_TOTAL: &str = "trailwatch_org_refresh_errors_total";
pub const SINK_SENT_TOTAL: &str = "trailwatch_sink_sent_total";
pub const SINK_RETRIES_TOTAL: &str = "trailwatch_sink_retries_total";
pub const SINK_FAILURES_TOTAL: &str = "trailwatch_sink_failures_total";
pub const SINK_REJECTED_TOTAL: &str = "trailwatch_sink_rejected_total";
pub const SINK_SPOOLED_TOTAL: &str = "trailwatch_sink_spooled_total";
pub const SINK_SPOOL_DEPTH: &str = "trailwatch_sink_spool_depth";
pub const SINK_SPOOL_OLDEST_AGE_SECONDS: &str = "trailwatch_sink_spool_oldest_age_seconds";
pub const SINK_SPOOL_WRITE_ERRORS_TOTAL: &str = "trailwatch_sink_spool_write_errors_total";
pub const SINK_SPOOL_UNREADABLE_TOTAL: &str = "trailwatch_sink_spool_unreadable_total";
pub const SINK_SPOOL_CORRUPT_TOTAL: &str = "trailwatch_sink_spool_corrupt_total";
pub const SINK_SPOOL_CORRUPT_BYTES_TOTAL: &str = "trailwatch_sink_spool_corrupt_bytes_total";
pub const SINK_SPOOL_CURSOR_INVALID_TOTAL: &str = "trailwatch_sink_spool_cursor_invalid_total";
pub const SINK_JOURNAL_ERRORS_TOTAL: &str = "trailwatch_sink_journal_errors_total";
pub const SINK_REPEATS_SKIPPED_TOTAL: &str = "trailwatch_sink_repeats_skipped_total";
pub const SINK_REQUEST_SECONDS: &str = "trailwatch_sink_request_seconds";
pub const SINK_ACCEPT_SECONDS: &str = "trailwatch_sink_accept_seconds";
pub const ACCOUNT_LAST_EVENT_TIMESTAMP_SECONDS: &str =
    "trailwatch_account_last_event_timestamp_seconds";
pub const EVENT_LAG_SECONDS: &str = "trailwatch_event_lag_seconds";
pub const FEED_SILENT: &str = "trailwatch_feed_silent";
pub const FEED_SILENT_ACCOUNTS: &str = "trailwatch_feed_silent_accounts";
pub const FEED_UNTRACKED_TOTAL: &str = "trailwatch_feed_untracked_total";
pub const IDENTITY_SESSIONS: &str = "trailwatch_identity_sessions";
pub const IDENTITY_SESSIONS_EVICTED_TOTAL: &str = "trailwatch_identity_sessions_evicted_total";
pub const IDENTITY_EXEMPTED_TOTAL: &str = "trailwatch_identity_exempted_total";

/// Every metric: (name, kind, HELP).
pub const ALL: &[(&str, Kind, &str)] = &[
    (
        IDENTITY_SESSIONS,
        Kind::Gauge,
        "Access keys issued in the stream and held to say who is behind a session (identity.max_sessions)",
    ),
    (
        IDENTITY_SESSIONS_EVICTED_TOTAL,
        Kind::Counter,
        "Issued access keys dropped before their credentials expired to stay within identity.max_sessions (a session using one then has no origin)",
    ),
    (
        IDENTITY_EXEMPTED_TOTAL,
        Kind::Counter,
        "unapproved-region alerts not raised because a [[policy.exempt]] entry's origin matched who is behind the event",
    ),
    (
        RECORDS_TOTAL,
        Kind::Counter,
        "Transport records read (Kinesis, Firehose, Lambda), by shard",
    ),
    (
        EVENTS_TOTAL,
        Kind::Counter,
        "CloudTrail events decoded",
    ),
    (
        ALERTS_TOTAL,
        Kind::Counter,
        "Alerts raised (siem stream), by rule",
    ),
    (
        ALERTS_LOST_TOTAL,
        Kind::Counter,
        "Alerts given up without being delivered or spooled (the state is then no longer saved)",
    ),
    (
        DEAD_LETTERS_TOTAL,
        Kind::Counter,
        "Records that could not be read (written to the dead-letter file with position and reason)",
    ),
    (
        KINESIS_SUBSCRIPTIONS_TOTAL,
        Kind::Counter,
        "Enhanced fan-out: SubscribeToShard subscriptions opened (one per shard every 5 minutes, and after each failure)",
    ),
    (
        KINESIS_SUBSCRIBE_ERRORS_TOTAL,
        Kind::Counter,
        "Enhanced fan-out: SubscribeToShard calls refused or subscriptions failed, by kind (the service's error code, transport, event_stream)",
    ),
    (
        BACKFILL_OBJECTS_TOTAL,
        Kind::Counter,
        "Backfill: archive objects read into the live engine (their alerts accepted)",
    ),
    (
        BACKFILL_EVENTS_TOTAL,
        Kind::Counter,
        "Backfill: events of feed-gap windows read from the archive",
    ),
    (
        BACKFILL_UNREAD_TOTAL,
        Kind::Counter,
        "Backfill: archive objects or prefixes that could not be listed or read (the window is not whole)",
    ),
    (
        BACKFILL_TAKEN_OVER_TOTAL,
        Kind::Counter,
        "Backfill: windows taken over from a worker that stopped renewing its claim (read again from their start)",
    ),
    (
        FIRST_SEEN_PAIRS,
        Kind::Gauge,
        "First-seen: (key, value) pairs held in the baseline ([baseline] max_pairs at most)",
    ),
    (
        FIRST_SEEN_EVICTED_TOTAL,
        Kind::Counter,
        "First-seen: pairs dropped to stay within [baseline] max_pairs (their keys were seen least recently; such a key learns again)",
    ),
    (
        FIRST_SEEN_SHARED_TOTAL,
        Kind::Counter,
        "First-seen with [baseline] table: pairs new to this worker settled with the shared table, by result (first: this worker wrote it first; known: another had; error: the table could not be reached and this worker decided alone, or a refresh failed)",
    ),
    (
        BACKFILL_JOBS,
        Kind::Gauge,
        "Backfill: feed-gap windows still to be read from the archive",
    ),
    (
        FEED_GAP_CHECKS_TOTAL,
        Kind::Counter,
        "Shard readings (re)started and checked for a gap, by result: gap, none, or unknown (a checkpoint without its arrival time, or the stream's retention and creation time unreadable)",
    ),
    (
        FEED_GAPS_TOTAL,
        Kind::Counter,
        "feed-gap: windows of the stream that could not be read, by cause (before-creation, past-retention, shard-gone)",
    ),
    (
        FEED_GAP_SECONDS_TOTAL,
        Kind::Counter,
        "Seconds of stream that could not be read (the sum of the feed-gap windows)",
    ),
    (
        KINESIS_ITERATOR_ERRORS_TOTAL,
        Kind::Counter,
        "GetShardIterator calls that failed (a saved position Kinesis refuses shows here, and as an ERROR after 5 tries)",
    ),
    (
        SINK_SPOOL_RELINKED_TOTAL,
        Kind::Counter,
        "Times a sink's spool was found removed while in use and made again, by sink",
    ),
    (
        SINK_SPOOL_LOST_TOTAL,
        Kind::Counter,
        "Spooled items lost because their segment was removed (those of the open segment are kept), by sink",
    ),
    (
        SINK_BROKEN,
        Kind::Gauge,
        "1 while a sink's requests fail as never retryable (401, 403, 404, 410: its items wait in the spool; /readyz says not ready), by sink",
    ),
    (
        SINK_SPOOL_UNWRITABLE,
        Kind::Gauge,
        "1 while a sink's spool cannot be written (new items are not acknowledged; /readyz says not ready), by sink",
    ),
    (
        EVENT_CLOCK_JUMPS_REFUSED_TOTAL,
        Kind::Counter,
        "replay/backtest: event times that moved no state clock (far ahead of it and not confirmed by a second event): one record dated 2099 moves nothing",
    ),
    (
        EVENT_TIME_CLAMPED_TOTAL,
        Kind::Counter,
        "run/serve/lambda: events dated more than dedup.max_clock_skew ahead of their arrival (judged on their own time; the health watch and correlation windows take the arrival time)",
    ),
    (
        ORG_FIRST_READ_FALLBACKS_TOTAL,
        Kind::Counter,
        "Starts where the organization could not be read within organization.first_read_timeout and no tree was saved (events judged on the config policy until it is read)",
    ),
    (
        ORG_REJUDGED_EVENTS_TOTAL,
        Kind::Counter,
        "Events judged on the config policy at start, judged again once the organization was read",
    ),
    (
        ORG_REJUDGE_DROPPED_TOTAL,
        Kind::Counter,
        "Events judged on the config policy at start that could not be kept to be judged again (over 200,000 events or 256 MiB)",
    ),
    (
        CHECKPOINT_SECONDS,
        Kind::Histogram,
        "Time to write one checkpoint (state file and id log), seconds",
    ),
    (
        CHECKPOINT_BYTES_TOTAL,
        Kind::Counter,
        "Bytes written by checkpoints, by file (state: the JSON; ids: the id log)",
    ),
    (
        CHECKPOINT_ID_LOG_REWRITES_TOTAL,
        Kind::Counter,
        "Checkpoints that wrote the whole id log anew (the first after a start, and compactions)",
    ),
    (
        STATE_IDS_DAMAGED_TOTAL,
        Kind::Counter,
        "Starts whose id log was damaged (the ids before the damage were kept)",
    ),
    (
        INCOMPLETE_TOTAL,
        Kind::Counter,
        "What a command that ends (replay, backtest, match, explain) did not do, by command and what: dead letters, unread inputs, unlisted prefixes, dedup ids forgotten early, items left spooled or not accepted",
    ),
    (
        NOTIFY_ITEMS_TOTAL,
        Kind::Counter,
        "Items of the shaped notify stream",
    ),
    (
        SHAPING_ALERTS_IN_TOTAL,
        Kind::Counter,
        "Alerts that entered shaping",
    ),
    (
        SHAPING_SUPPRESSED_TOTAL,
        Kind::Counter,
        "Alerts folded into updates or digests by shaping",
    ),
    (
        SIGMA_CORRELATION_TOTAL,
        Kind::Counter,
        "Sigma correlation windows: matches that joined one (hits), that lacked a group-by value (no_group) or came too late (late), groups dropped to stay bounded (evicted), alerts (fired)",
    ),
    (
        UNROUTED_TOTAL,
        Kind::Counter,
        "Items no route took, by stream",
    ),
    (
        EVENT_TO_ALERT_SECONDS,
        Kind::Histogram,
        "Event time to alert, seconds (arrival-time roads)",
    ),
    (
        CONFIG_RELOADS_TOTAL,
        Kind::Counter,
        "Config reloads, by result",
    ),
    (
        MILLIS_BEHIND_LATEST,
        Kind::Gauge,
        "Kinesis GetRecords MillisBehindLatest, by shard",
    ),
    (
        SHARDS_OWNED,
        Kind::Gauge,
        "Kinesis shards this worker reads",
    ),
    (
        GETRECORDS_ERRORS_TOTAL,
        Kind::Counter,
        "GetRecords calls that failed, by kind",
    ),
    (
        CHECKPOINT_LAST_SUCCESS_TIMESTAMP_SECONDS,
        Kind::Gauge,
        "When the checkpoint was last written (Unix seconds)",
    ),
    (
        CHECKPOINT_ERRORS_TOTAL,
        Kind::Counter,
        "Checkpoint writes that failed",
    ),
    (
        LEASES_OWNED,
        Kind::Gauge,
        "Shard leases this worker holds (DynamoDB leases)",
    ),
    (
        LEASES_TAKEN_TOTAL,
        Kind::Counter,
        "Shard leases taken (new, expired or stolen)",
    ),
    (
        LEASES_LOST_TOTAL,
        Kind::Counter,
        "Shard leases lost to another worker",
    ),
    (
        FIREHOSE_REQUESTS_TOTAL,
        Kind::Counter,
        "Firehose HTTP endpoint requests, by status",
    ),
    (
        FIREHOSE_CONNECTIONS_OPEN,
        Kind::Gauge,
        "Open connections to the Firehose endpoint",
    ),
    (
        FIREHOSE_CONNECTIONS_REFUSED_TOTAL,
        Kind::Counter,
        "Connections closed at once (over max_connections)",
    ),
    (
        FIREHOSE_CONNECTIONS_TIMED_OUT_TOTAL,
        Kind::Counter,
        "Connections closed by a timeout, by timeout",
    ),
    (
        ORG_ACCOUNTS,
        Kind::Gauge,
        "Accounts in the organization as last read",
    ),
    (
        ORG_LAST_REFRESH_TIMESTAMP_SECONDS,
        Kind::Gauge,
        "When AWS Organizations was last read successfully (Unix seconds)",
    ),
    (
        ORG_REFRESH_ERRORS_TOTAL,
        Kind::Counter,
        "Reads of AWS Organizations that failed",
    ),
    (
        SINK_SENT_TOTAL,
        Kind::Counter,
        "Items delivered, by sink",
    ),
    (
        SINK_RETRIES_TOTAL,
        Kind::Counter,
        "Delivery retries, by sink",
    ),
    (
        SINK_FAILURES_TOTAL,
        Kind::Counter,
        "Delivery attempts that failed, by sink and kind",
    ),
    (
        SINK_REJECTED_TOTAL,
        Kind::Counter,
        "Items the destination rejected (kept in rejected/), by sink",
    ),
    (
        SINK_SPOOLED_TOTAL,
        Kind::Counter,
        "Items written to the durable spool, by sink",
    ),
    (
        SINK_SPOOL_DEPTH,
        Kind::Gauge,
        "Items waiting in the spool, by sink",
    ),
    (
        SINK_SPOOL_OLDEST_AGE_SECONDS,
        Kind::Gauge,
        "Age of the oldest spooled item, by sink",
    ),
    (
        SINK_SPOOL_WRITE_ERRORS_TOTAL,
        Kind::Counter,
        "Spool appends that failed (disk full…), by sink",
    ),
    (
        SINK_SPOOL_UNREADABLE_TOTAL,
        Kind::Counter,
        "Spool segments that could not be read, by sink",
    ),
    (
        SINK_SPOOL_CORRUPT_TOTAL,
        Kind::Counter,
        "Damaged spool regions quarantined, by sink",
    ),
    (
        SINK_SPOOL_CORRUPT_BYTES_TOTAL,
        Kind::Counter,
        "Bytes of damaged spool regions quarantined, by sink",
    ),
    (
        SINK_SPOOL_CURSOR_INVALID_TOTAL,
        Kind::Counter,
        "Spool cursors that failed their checksum, by sink",
    ),
    (
        SINK_JOURNAL_ERRORS_TOTAL,
        Kind::Counter,
        "Delivered-ids journal writes that failed, by sink",
    ),
    (
        SINK_REPEATS_SKIPPED_TOTAL,
        Kind::Counter,
        "Items not sent again because the journal says they were delivered, by sink",
    ),
    (
        SINK_REQUEST_SECONDS,
        Kind::Histogram,
        "Duration of delivery requests, by sink",
    ),
    (
        SINK_ACCEPT_SECONDS,
        Kind::Histogram,
        "Submission to acceptance (delivered or spooled), by sink",
    ),
    (
        ACCOUNT_LAST_EVENT_TIMESTAMP_SECONDS,
        Kind::Gauge,
        "Event time of the latest event, by account (the busiest health.metrics_accounts accounts, then other)",
    ),
    (
        EVENT_LAG_SECONDS,
        Kind::Histogram,
        "Event time to arrival, seconds, by account (the busiest health.metrics_accounts accounts, then other)",
    ),
    (
        FEED_SILENT,
        Kind::Gauge,
        "1 while the whole feed is silent ([health])",
    ),
    (
        FEED_SILENT_ACCOUNTS,
        Kind::Gauge,
        "Accounts the feed-health watch calls silent",
    ),
    (
        FEED_UNTRACKED_TOTAL,
        Kind::Counter,
        "Accounts and account-regions not watched because health.max_keys was reached",
    ),
];

/// Gives the installed recorder every metric's `# HELP` (Prometheus tooling, `promtool check
/// metrics` among it, expects one).
pub fn describe() {
    for &(name, kind, help) in ALL {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every `.rs` file under `src/` but this one, with its text.
    fn sources() -> Vec<(String, String)> {
        fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("src/metric.rs")
                {
                    out.push((
                        p.display().to_string(),
                        std::fs::read_to_string(&p).unwrap(),
                    ));
                }
            }
        }
        let mut out = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut out,
        );
        out
    }

    #[test]
    fn every_metric_is_named_here_once_and_nowhere_else_and_recorded_somewhere() {
        let names: BTreeSet<&str> = ALL.iter().map(|m| m.0).collect();
        assert_eq!(names.len(), ALL.len(), "a metric listed twice");
        assert!(ALL
            .iter()
            .all(|m| m.0.starts_with("trailwatch_") && !m.2.is_empty()));
        let files = sources();
        for (path, text) in &files {
            assert!(
                !text.contains("\"trailwatch_"),
                "{path}: a metric name written out; use the constant of src/metric.rs"
            );
        }
        // Each constant is used by the code that records it (a dead metric would still have
        // its HELP served).
        let all_text: String = files.iter().map(|(_, t)| t.as_str()).collect();
        for (name, _, _) in ALL {
            let constant = name.trim_start_matches("trailwatch_").to_uppercase();
            assert!(
                all_text.contains(&format!("metric::{constant}")),
                "{name}: never recorded (metric::{constant} is unused)"
            );
        }
    }
}
