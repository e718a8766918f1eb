//! The Firehose road (`trailwatch serve`): the Firehose HTTP endpoint. Each request is authenticated (before its
//! body is read), read within `request_timeout` (which covers the whole request), capped, then
//! takes one of `max_concurrency` processing slots, is decoded record by record (any envelope issue 2 reads), run through
//! the engine, and answered 200 only once every alert from it is accepted: written and
//! flushed to stdout without `[[sinks]]`, else delivered or spooled. A retry with the same
//! request id is answered from the request log: 200 again when it succeeded, or its items are
//! submitted again when it failed; dedup by eventID keeps reprocessing from alerting twice.

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::live;
use super::RoadError;
use crate::build::OutputChoice;
use crate::clock::{now_millis, now_secs};
use crate::config::{Config, FirehoseSource};
use crate::decode::{Position, Step};
use crate::engine::{Data, Engine, Pending, Record};
use crate::source::connections::{self, Guard};
use crate::source::firehose::{self, Keys, Outcome, RequestLog};
use crate::state::StateFile;

/// What `serve` was asked besides the config.
pub struct Options {
    /// The config file, for messages and SIGHUP.
    pub config_file: PathBuf,
    pub dead_letter: Option<PathBuf>,
    /// Longest a graceful shutdown may take.
    pub shutdown_deadline: Duration,
    /// Set once the endpoint listens (`/readyz`).
    pub ready: Arc<AtomicBool>,
}

/// The endpoint's shared parts: what each request needs.
pub struct App {
    keys: Keys,
    source: FirehoseSource,
    max_decompressed: usize,
    engine: Engine,
    /// What became of each request id; a failed one keeps its items for the retry (they are
    /// unsettled, so the state is not saved meanwhile).
    log: Mutex<RequestLog<Pending>>,
    permits: Semaphore,
    /// Bytes of request bodies being read (max_concurrency × max_body_bytes).
    body_budget: Semaphore,
    /// Deliveries that may outlive their request.
    deliveries: TaskTracker,
    /// Where changes to the organization seen in the stream are reported.
    nudge: Arc<crate::org::watch::Nudge>,
}

impl App {
    /// The endpoint of `source` around `engine`, accepting `keys`.
    pub fn new(
        engine: Engine,
        source: FirehoseSource,
        keys: Keys,
        max_decompressed: usize,
        nudge: Arc<crate::org::watch::Nudge>,
    ) -> App {
        App {
            nudge,
            keys,
            max_decompressed,
            engine,
            log: Mutex::new(RequestLog::new(10_000)),
            permits: Semaphore::new(source.max_concurrency),
            body_budget: Semaphore::new(
                source
                    .max_concurrency
                    .saturating_mul(source.max_body_bytes)
                    .min(Semaphore::MAX_PERMITS),
            ),
            source,
            deliveries: TaskTracker::new(),
        }
    }

    /// Writes the dedup and shaping state if everything evaluated so far is settled;
    /// returns whether it did.
    fn save(&self, state: &Mutex<StateFile>) -> Result<bool, RoadError> {
        let mut state = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(snapshot) = self.engine.snapshot_since(state.since()) else {
            return Ok(false);
        };
        state.state.engine = snapshot;
        super::save_state(&mut state)?;
        Ok(true)
    }
}

/// The routes: a POST to any path is a delivery.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", post(ingest))
        .route("/{*path}", post(ingest))
        .with_state(app)
}

fn reply(status: u16, request_id: &str, error: Option<&str>) -> Response {
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    metrics::counter!(crate::metric::FIREHOSE_REQUESTS_TOTAL, "status" => status.to_string())
        .increment(1);
    (
        status_code,
        [("content-type", "application/json")],
        firehose::answer(request_id, now_millis() as i64, error),
    )
        .into_response()
}

/// Decodes and evaluates the records of one request.
fn process(app: &App, req: &firehose::Request) -> Pending {
    let records = req.records.iter().enumerate().map(|(i, r)| {
        let mut position = Position::new(format!("firehose:{}", req.request_id));
        position.steps.push(Step::Index("records", i));
        Record {
            position,
            data: Data::Base64(&r.data),
        }
    });
    let mut evaluated = app.engine.evaluate(records, None, now_secs());
    if let Some(change) = evaluated.org_change.take() {
        app.nudge.send(change);
    }
    metrics::counter!(crate::metric::RECORDS_TOTAL, "source" => "firehose")
        .increment(req.records.len() as u64);
    evaluated.pending
}

/// The longest request id echoed back (a Firehose request id is a 36-character UUID).
const MAX_ECHOED_ID: usize = 128;

/// Whether reading a body failed because it passed the length limit (not because it was cut).
fn is_too_large(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

pub async fn ingest(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    // Echoed in every answer, before the caller is authenticated: a Firehose request id is a
    // UUID, so anything longer or stranger is cut to what one could be.
    let header_id: String = headers
        .get("x-amz-firehose-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(MAX_ECHOED_ID)
        .collect();
    // Authenticate before reading anything else: a stranger learns nothing, not even limits.
    let key = headers
        .get("x-amz-firehose-access-key")
        .map(|v| v.as_bytes());
    if !app.keys.check(key) {
        return reply(401, &header_id, Some("unauthorized"));
    }
    // Bodies being read hold at most max_concurrency × max_body_bytes of memory: each claims
    // its Content-Length (or the cap when it has none) before it is read.
    let claim = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(app.source.max_body_bytes)
        .clamp(1, app.source.max_body_bytes);
    let claim = u32::try_from(claim).unwrap_or(u32::MAX);
    let Ok(_budget) = app.body_budget.try_acquire_many(claim) else {
        return reply(
            503,
            &header_id,
            Some("busy: too many request bodies being read; retry"),
        );
    };
    // `request_timeout` covers the whole request, reading the body first: a client that
    // stalls its body gets 408 and holds no processing slot meanwhile.
    let deadline = tokio::time::Instant::now() + app.source.request_timeout;
    let bytes = match tokio::time::timeout_at(
        deadline,
        axum::body::to_bytes(body, app.source.max_body_bytes),
    )
    .await
    {
        Ok(Ok(b)) => b,
        // Over the cap: Firehose's permanent failure, 413.
        Ok(Err(e)) if is_too_large(&e) => {
            return reply(
                413,
                &header_id,
                Some(&format!(
                    "request body larger than {} bytes",
                    app.source.max_body_bytes
                )),
            )
        }
        // Cut short (fewer bytes than Content-Length, a reset connection): 400, which
        // Firehose retries, never the permanent 413.
        Ok(Err(_)) => {
            return reply(
                400,
                &header_id,
                Some("request body could not be read whole (cut short?); retry"),
            )
        }
        Err(_) => {
            return reply(
                408,
                &header_id,
                Some("request body not received within request_timeout"),
            )
        }
    };
    let Ok(_permit) = app.permits.try_acquire() else {
        return reply(
            503,
            &header_id,
            Some("busy: too many requests in flight; retry"),
        );
    };
    let gzip = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let req = match firehose::parse(
        &bytes,
        gzip,
        app.source.max_body_bytes,
        app.max_decompressed,
    ) {
        Ok(r) => r,
        Err(e) => return reply(e.status(), &header_id, Some(&e.to_string())),
    };
    let id = req.request_id.clone();
    let previous = app.log.lock().ok().and_then(|mut l| l.begin(&id));
    let pending = match previous {
        Some(Outcome::Done) => return reply(200, &id, None),
        Some(Outcome::InFlight) => {
            return reply(503, &id, Some("this request is being processed; retry"))
        }
        Some(Outcome::Failed(pending)) => pending,
        None => {
            let app2 = app.clone();
            // Not timed out: once records are evaluated their alerts must not be dropped.
            match tokio::task::spawn_blocking(move || process(&app2, &req)).await {
                Ok(pending) => pending,
                Err(e) => {
                    if let Ok(mut l) = app.log.lock() {
                        l.forget(&id);
                    }
                    return reply(500, &id, Some(&format!("processing failed: {e}")));
                }
            }
        }
    };
    // Delivery records its own outcome, so a request that outlives its timeout still ends
    // as Done (a retry gets 200) or Failed (a retry submits the same items).
    let task = {
        let (app, id) = (app.clone(), id.clone());
        app.deliveries.clone().spawn(async move {
            let outcome = match app.engine.submit(pending).await.wait().await {
                Ok(()) => Outcome::Done,
                Err(refused) => {
                    tracing::warn!(request_id = %id, reason = %refused.reason, "alerts not accepted: the retry submits them again");
                    Outcome::Failed(refused.pending)
                }
            };
            let ok = matches!(outcome, Outcome::Done);
            if let Ok(mut l) = app.log.lock() {
                l.set(&id, outcome);
            }
            ok
        })
    };
    match tokio::time::timeout_at(deadline, task).await {
        Ok(Ok(true)) => reply(200, &id, None),
        Ok(_) => reply(
            500,
            &id,
            Some("alerts could not be delivered or spooled; retry"),
        ),
        Err(_) => reply(503, &id, Some("still delivering; retry")),
    }
}

/// Serves the endpoint until `stop`, then lets deliveries settle and saves the state
/// (within `shutdown_deadline`).
pub async fn run(
    config: Config,
    source: FirehoseSource,
    keys: Keys,
    o: Options,
    stop: CancellationToken,
) -> Result<(), RoadError> {
    // The dedup and shaping state survive a restart (`[checkpoint] path`).
    let mut state = StateFile::open(&config.checkpoint.path, "firehose")?;
    let started = live::start(
        &o.config_file,
        &config,
        &mut state,
        OutputChoice::configured(&config, None),
        o.dead_letter.clone(),
        &stop,
    )
    .await?;
    let Some(live::Started {
        engine,
        mut live,
        drift: first,
    }) = started
    else {
        return Ok(());
    };
    let state = Arc::new(Mutex::new(state));
    let app = Arc::new(App::new(
        engine,
        source.clone(),
        keys,
        config.decode.max_decompressed_bytes,
        live.nudge(),
    ));
    let background = TaskTracker::new();
    {
        let (app, state, stop) = (app.clone(), state.clone(), stop.clone());
        let every = config.checkpoint.interval;
        background.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => break,
                }
                let (app, state) = (app.clone(), state.clone());
                match tokio::task::spawn_blocking(move || app.save(&state)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "cannot write the state file"),
                    Err(_) => break,
                }
            }
        });
    }
    // Windows close and digests fall due with time, not only with requests.
    {
        let (app, stop) = (app.clone(), stop.clone());
        background.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => break,
                }
                let due = app.engine.tick(now_secs());
                if due.is_empty() {
                    continue;
                }
                if app.engine.submit(due).await.wait().await.is_err() {
                    tracing::error!("notify items could not be delivered or spooled");
                }
            }
        });
    }
    // The organization read again, and SIGHUP: applied between requests.
    {
        let (app, stop) = (app.clone(), stop.clone());
        background.spawn(async move {
            let mut drift = first;
            loop {
                if let Some(items) = drift.take() {
                    let app2 = app.clone();
                    app.deliveries.spawn(async move {
                        if let Err(r) = app2.engine.submit(items).await.wait().await {
                            tracing::error!(reason = %r.reason, "drift alerts could not be delivered or spooled");
                        }
                    });
                }
                drift = tokio::select! {
                    d = live.next(&app.engine) => d,
                    _ = stop.cancelled() => break,
                };
            }
        });
    }
    background.close();
    let router = router(app.clone());
    let handle = axum_server::Handle::new();
    {
        let (handle, stop) = (handle.clone(), stop.clone());
        let deadline = o.shutdown_deadline;
        tokio::spawn(async move {
            stop.cancelled().await;
            handle.graceful_shutdown(Some(deadline));
        });
    }
    o.ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let limits = connections::Limits {
        max_connections: source.max_connections,
        header_read_timeout: source.header_read_timeout,
        idle_timeout: source.idle_timeout,
    };
    let served = match &source.tls {
        Some((cert, key)) => {
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|source| RoadError::Io {
                    what: format!(
                        "loading TLS certificate {} and key {}",
                        cert.display(),
                        key.display()
                    ),
                    source,
                })?;
            tracing::info!(addr = %source.listen, "Firehose endpoint (HTTPS)");
            let tls = axum_server::tls_rustls::RustlsAcceptor::new(tls)
                .acceptor(Guard::new(axum_server::accept::DefaultAcceptor, limits));
            axum_server::bind(source.listen)
                .acceptor(tls)
                .handle(handle)
                .serve(router.into_make_service())
                .await
        }
        None => {
            tracing::info!(addr = %source.listen, "Firehose endpoint (HTTP: put TLS in front, or set tls_cert and tls_key)");
            axum_server::bind(source.listen)
                .acceptor(Guard::new(axum_server::accept::DefaultAcceptor, limits))
                .handle(handle)
                .serve(router.into_make_service())
                .await
        }
    };
    let listen = source.listen;
    served.map_err(|source| RoadError::Io {
        what: format!("serving on {listen}"),
        source,
    })?;
    stop.cancel();
    // Requests have finished; their deliveries settle within accept_within.
    let deadline = tokio::time::Instant::now() + o.shutdown_deadline;
    app.deliveries.close();
    if tokio::time::timeout_at(deadline, app.deliveries.wait())
        .await
        .is_err()
    {
        tracing::warn!("deliveries still running at the shutdown deadline");
    }
    loop {
        let (a, s) = (app.clone(), state.clone());
        if tokio::task::spawn_blocking(move || a.save(&s)).await?? {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!("alerts still unsettled at the shutdown deadline: the state is not saved (retried requests alert again)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    background.wait().await;
    match Arc::try_unwrap(app) {
        Ok(app) => app.engine.shutdown().await,
        Err(_) => tracing::warn!("a request still holds the engine at shutdown: what is queued for the sinks is not spooled"),
    }
    Ok(())
}
