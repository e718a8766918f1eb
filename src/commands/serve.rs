//! `trailwatch serve`: the Firehose HTTP endpoint. Each request is authenticated (before its
//! body is read), capped, decoded record by record (any envelope issue 2 reads), run through
//! the pipeline, and answered 200 only once every alert from it is accepted: written and
//! flushed to stdout without `[[sinks]]`, else delivered or spooled. A retry with the same
//! request id is answered from the request log: 200 again when it succeeded, or its alerts are
//! delivered again when it failed; dedup by eventID keeps reprocessing from alerting twice.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tokio::sync::Semaphore;
use trailwatch::config::{Config, FirehoseSource};
use trailwatch::decode::{Decoder, Position, Step};
use trailwatch::pipeline::collect::Collect;
use trailwatch::pipeline::Pipeline;
use trailwatch::shaping::Shaper;
use trailwatch::sink::deliver::Dispatcher;
use trailwatch::sink::item::{due, items, Item};
use trailwatch::sink::{report_dead_letter, DeadLetterFile, JsonLines};
use trailwatch::source::checkpoint::FileCheckpoints;
use trailwatch::source::firehose::{self, Keys, Outcome, RequestLog};

use super::{exit, load_config, wall_clock};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short)]
    config: PathBuf,
    /// Serve Prometheus metrics on /metrics, and /healthz and /readyz, at this address (a
    /// separate listener).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Append one JSON line per unreadable record to this file.
    #[arg(long, value_name = "FILE")]
    dead_letter: Option<PathBuf>,
    /// Longest a graceful shutdown may take.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    shutdown_deadline: Duration,
}

/// The pipeline and what alerts go to, behind one lock.
struct Core {
    pipeline: Pipeline,
    shaper: Option<Shaper>,
    feed: Option<JsonLines<io::Stdout>>,
    dead: Option<DeadLetterFile>,
}

struct App {
    keys: Keys,
    source: FirehoseSource,
    max_decompressed: usize,
    decoder: Decoder,
    core: Mutex<Core>,
    dispatcher: Option<Dispatcher>,
    log: Mutex<RequestLog<Arc<Vec<Item>>>>,
    permits: Semaphore,
    /// Requests evaluated whose alerts are not yet accepted: the state may be saved only
    /// when there are none (it must not remember events whose alerts could still be lost).
    unsettled: std::sync::atomic::AtomicUsize,
}

impl App {
    /// Writes the dedup and shaping state if everything evaluated so far is settled;
    /// returns whether it did.
    fn save(&self, cp: &Mutex<FileCheckpoints>) -> anyhow::Result<bool> {
        let core = self
            .core
            .lock()
            .map_err(|_| anyhow::anyhow!("pipeline lock poisoned"))?;
        let failed = self.log.lock().map(|l| l.has_failed()).unwrap_or(true);
        if failed || self.unsettled.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return Ok(false);
        }
        let mut cp = cp
            .lock()
            .map_err(|_| anyhow::anyhow!("checkpoint lock poisoned"))?;
        cp.state.pipeline = Some(core.pipeline.snapshot());
        cp.state.shaping = core.shaper.as_ref().map(Shaper::snapshot);
        cp.save()?;
        Ok(true)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn reply(status: u16, request_id: &str, error: Option<&str>) -> Response {
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    metrics::counter!("trailwatch_firehose_requests_total", "status" => status.to_string())
        .increment(1);
    (
        status_code,
        [("content-type", "application/json")],
        firehose::answer(request_id, now_ms(), error),
    )
        .into_response()
}

/// Decodes and evaluates the records; writes the feed (no sinks) or returns the items.
fn process(app: &App, req: &firehose::Request) -> io::Result<Vec<Item>> {
    let mut core = app
        .core
        .lock()
        .map_err(|_| io::Error::other("pipeline lock poisoned"))?;
    // Settled once its alerts are accepted (the delivery task counts it down).
    app.unsettled
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let Core {
        pipeline,
        shaper,
        feed,
        dead,
    } = &mut *core;
    let now = wall_clock();
    let mut c = Collect::new(pipeline, now);
    for (i, r) in req.records.iter().enumerate() {
        let mut pos = Position::new(format!("firehose:{}", req.request_id));
        pos.steps.push(Step::Index("records", i));
        app.decoder.decode_base64(&r.data, &mut pos, &mut c);
    }
    metrics::counter!("trailwatch_records_total", "source" => "firehose")
        .increment(req.records.len() as u64);
    metrics::counter!("trailwatch_events_total").increment(c.events);
    for d in &c.dead {
        report_dead_letter(d);
        if let Some(f) = dead.as_mut() {
            if let Err(e) = f.write(d) {
                tracing::error!(error = %e, "cannot write the dead-letter file");
            }
        }
    }
    if let (Some(f), false) = (dead.as_mut(), c.dead.is_empty()) {
        if let Err(e) = f.sync() {
            tracing::error!(error = %e, "cannot write the dead-letter file");
        }
    }
    let alerts = std::mem::take(&mut c.alerts);
    for a in &alerts {
        metrics::counter!("trailwatch_alerts_total", "rule" => a.rule.clone()).increment(1);
    }
    if let Some(out) = feed {
        for a in &alerts {
            out.write(a)?;
        }
        out.flush()?;
        return Ok(Vec::new());
    }
    Ok(items(alerts, shaper.as_mut(), now))
}

async fn deliver(app: &App, items: Vec<Item>) -> bool {
    match &app.dispatcher {
        Some(d) if !items.is_empty() => d.submit(items).await.wait().await,
        _ => true,
    }
}

async fn ingest(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let header_id = headers
        .get("x-amz-firehose-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // Authenticate before reading anything else: a stranger learns nothing, not even limits.
    let key = headers
        .get("x-amz-firehose-access-key")
        .map(|v| v.as_bytes());
    if !app.keys.check(key) {
        return reply(401, &header_id, Some("unauthorized"));
    }
    let Ok(_permit) = app.permits.try_acquire() else {
        return reply(
            503,
            &header_id,
            Some("busy: too many requests in flight; retry"),
        );
    };
    let bytes = match axum::body::to_bytes(body, app.source.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return reply(
                413,
                &header_id,
                Some(&format!(
                    "request body larger than {} bytes",
                    app.source.max_body_bytes
                )),
            )
        }
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
    let items = match previous {
        Some(Outcome::Done) => return reply(200, &id, None),
        Some(Outcome::InFlight) => {
            return reply(503, &id, Some("this request is being processed; retry"))
        }
        Some(Outcome::Failed(items)) => {
            app.unsettled
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (*items).clone()
        }
        None => {
            let app2 = app.clone();
            // Not timed out: once records are evaluated their alerts must not be dropped.
            match tokio::task::spawn_blocking(move || process(&app2, &req)).await {
                Ok(Ok(items)) => items,
                Ok(Err(e)) => {
                    app.unsettled
                        .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    return reply(500, &id, Some(&format!("writing alerts: {e}")));
                }
                Err(e) => return reply(500, &id, Some(&format!("processing failed: {e}"))),
            }
        }
    };
    // Delivery records its own outcome, so a request that outlives its timeout still ends
    // as Done (a retry gets 200) or Failed (a retry delivers the same items).
    let task = {
        let (app, id) = (app.clone(), id.clone());
        tokio::spawn(async move {
            let ok = deliver(&app, items.clone()).await;
            if let Ok(mut l) = app.log.lock() {
                l.set(
                    &id,
                    if ok {
                        Outcome::Done
                    } else {
                        Outcome::Failed(Arc::new(items))
                    },
                );
            }
            app.unsettled
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            ok
        })
    };
    match tokio::time::timeout(app.source.request_timeout, task).await {
        Ok(Ok(true)) => reply(200, &id, None),
        Ok(_) => reply(
            500,
            &id,
            Some("alerts could not be delivered or spooled; retry"),
        ),
        Err(_) => reply(503, &id, Some("still delivering; retry")),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let Some(source) = config.firehose.clone() else {
        eprintln!(
            "trailwatch: {}: no [source.firehose] table: nothing to serve",
            args.config.display()
        );
        return Ok(exit::bad_config());
    };
    let keys = match source.access_keys.as_ref().map(|k| k.resolve()) {
        Some(Ok(text)) => Keys::parse(&text),
        Some(Err(why)) => {
            eprintln!("trailwatch: {}: {why}", args.config.display());
            return Ok(exit::bad_config());
        }
        None => return Ok(exit::bad_config()),
    };
    if keys.is_empty() {
        eprintln!(
            "trailwatch: {}: no access key configured",
            args.config.display()
        );
        return Ok(exit::bad_config());
    }
    let rt = super::runtime()?;
    rt.block_on(serve(args, config, source, keys))
}

async fn serve(
    args: Args,
    config: Config,
    source: FirehoseSource,
    keys: Keys,
) -> anyhow::Result<ExitCode> {
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(addr) = args.metrics_addr {
        super::serve_metrics(addr, ready.clone())?;
    }
    let dispatcher = match trailwatch::sink::build::dispatcher(&config).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("trailwatch: {}: {e}", args.config.display());
            return Ok(exit::bad_config());
        }
    };
    let dead = match &args.dead_letter {
        Some(p) => Some(
            DeadLetterFile::open(p)
                .with_context(|| format!("cannot open dead-letter file {}", p.display()))?,
        ),
        None => None,
    };
    let include_event = config.delivery.needs_event();
    // The dedup and shaping state survive a restart (`[checkpoint] path`).
    let cp = FileCheckpoints::open(&config.checkpoint.path, "firehose")?;
    let mut pipeline = Pipeline::new(&config, include_event);
    if let Some(snap) = &cp.state.pipeline {
        pipeline.restore(snap, &config);
    }
    let shaper = dispatcher
        .as_ref()
        .map(|_| Shaper::from_config_restoring(&config, cp.state.shaping.clone()));
    let cp = Arc::new(Mutex::new(cp));
    let app = Arc::new(App {
        keys,
        max_decompressed: config.decode.max_decompressed_bytes,
        decoder: Decoder::new(config.decode.limits()),
        core: Mutex::new(Core {
            pipeline,
            shaper,
            feed: dispatcher.is_none().then(|| JsonLines::new(io::stdout())),
            dead,
        }),
        dispatcher,
        log: Mutex::new(RequestLog::new(10_000)),
        permits: Semaphore::new(source.max_concurrency),
        source: source.clone(),
        unsettled: std::sync::atomic::AtomicUsize::new(0),
    });
    let mut background = Vec::new();
    {
        let (app, cp) = (app.clone(), cp.clone());
        let every = config.checkpoint.interval;
        background.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let (app, cp) = (app.clone(), cp.clone());
                match tokio::task::spawn_blocking(move || app.save(&cp)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "cannot write the state file"),
                    Err(_) => break,
                }
            }
        }));
    }
    // Windows close and digests fall due with time, not only with requests.
    if app.dispatcher.is_some() {
        let app = app.clone();
        background.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let items: Vec<Item> = match app.core.lock() {
                    Ok(mut core) => match core.shaper.as_mut() {
                        Some(s) => due(s, wall_clock()),
                        None => Vec::new(),
                    },
                    Err(_) => break,
                };
                if !items.is_empty() && !deliver(&app, items).await {
                    tracing::error!("notify items could not be delivered or spooled");
                }
            }
        }));
    }
    let router = Router::new()
        .route("/", post(ingest))
        .route("/{*path}", post(ingest))
        .with_state(app.clone());
    let handle = axum_server::Handle::new();
    let shutdown = {
        let handle = handle.clone();
        let deadline = args.shutdown_deadline;
        async move {
            super::run::shutdown_signal().await;
            tracing::info!("shutting down: finishing requests in flight");
            handle.graceful_shutdown(Some(deadline));
        }
    };
    tokio::spawn(shutdown);
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let served = match &source.tls {
        Some((cert, key)) => {
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| {
                    format!(
                        "loading TLS certificate {} and key {}",
                        cert.display(),
                        key.display()
                    )
                })?;
            tracing::info!(addr = %source.listen, "Firehose endpoint (HTTPS)");
            axum_server::bind_rustls(source.listen, tls)
                .handle(handle)
                .serve(router.into_make_service())
                .await
        }
        None => {
            tracing::info!(addr = %source.listen, "Firehose endpoint (HTTP: put TLS in front, or set tls_cert and tls_key)");
            axum_server::bind(source.listen)
                .handle(handle)
                .serve(router.into_make_service())
                .await
        }
    };
    served.with_context(|| format!("serving on {}", source.listen))?;
    // Requests have finished; their deliveries settle within accept_within.
    let deadline = tokio::time::Instant::now() + args.shutdown_deadline;
    loop {
        let (a, c) = (app.clone(), cp.clone());
        if tokio::task::spawn_blocking(move || a.save(&c)).await?? {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!("alerts still unsettled at the shutdown deadline: the state is not saved (retried requests alert again)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for task in background {
        task.abort();
        let _ = task.await;
    }
    if let Ok(Some(d)) = Arc::try_unwrap(app).map(|a| a.dispatcher) {
        d.close().await;
    }
    io::stdout().flush().ok();
    Ok(exit::ok())
}
