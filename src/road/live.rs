//! What the live roads ([`super::kinesis`], [`super::firehose`]) share besides the engine: following the organization
//! (a read at start-up, a watch that reads it again, drift alerts) and SIGHUP (the config file
//! read again, validated, and its rules, policy, shaping and `[organization]` swapped into the
//! running engine between batches; a bad file keeps the running config).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::build;
use crate::clock::now_secs;
use crate::config::{self, Config};
use crate::engine::{Engine, Pending};
use crate::org::watch::{Nudge, Update, Watch};
use crate::org::{self, drift};
use crate::state::SavedOrganization;

/// What the start-up read of the organization came to.
pub enum FirstRead {
    /// No `[organization]`.
    NotConfigured,
    Read(SavedOrganization),
    /// It could not be read: the road goes on with the saved tree, else the config policy
    /// (and then judges provisionally: see [`Engine::judge_provisionally`]).
    Failed,
    /// SIGTERM (or Ctrl-C) came during the read.
    Stopped,
}

impl FirstRead {
    pub fn read(&self) -> Option<&SavedOrganization> {
        match self {
            FirstRead::Read(s) => Some(s),
            _ => None,
        }
    }

    pub fn failed(&self) -> bool {
        matches!(self, FirstRead::Failed)
    }
}

/// The organization as read at start-up. With a tree saved with the checkpoint, one read (the
/// SDK retries throttling); without one, events are not judged until a read succeeds, so
/// reads are tried again with backoff for up to `first_read_timeout`. A stop signal ends the
/// wait at once.
pub async fn first_read(
    config: &Config,
    saved: Option<&SavedOrganization>,
    stop: &tokio_util::sync::CancellationToken,
) -> FirstRead {
    let Some(cfg) = config.organization.as_ref() else {
        return FirstRead::NotConfigured;
    };
    let deadline = tokio::time::Instant::now() + cfg.first_read_timeout;
    let reading = async {
        let client = org::fetch::client(cfg.role_arn.as_deref()).await;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let e = match org::read(&client).await {
                Ok(tree) => {
                    return Some(SavedOrganization {
                        read_at: now_secs(),
                        tree,
                    })
                }
                Err(e) => e,
            };
            let wait =
                crate::backoff::delay(Duration::from_secs(1), Duration::from_secs(30), attempt);
            if saved.is_some() || tokio::time::Instant::now() + wait >= deadline {
                tracing::error!(error = %e, attempts = attempt, "cannot read the organization");
                return None;
            }
            tracing::warn!(error = %e, attempt, retry_in_ms = wait.as_millis() as u64, "cannot read the organization yet: events wait for it (organization.first_read_timeout)");
            tokio::time::sleep(wait).await;
        }
    };
    let got = tokio::select! {
        got = tokio::time::timeout_at(deadline, reading) => got.ok().flatten(),
        _ = stop.cancelled() => {
            tracing::warn!("stopped while reading the organization at start-up");
            return FirstRead::Stopped;
        }
    };
    match (got, saved) {
        (Some(s), _) => FirstRead::Read(s),
        (None, Some(s)) => {
            tracing::error!(saved_at = %crate::event::format_utc_secs(s.read_at), "cannot read the organization: starting from the tree saved with the checkpoint");
            FirstRead::Failed
        }
        (None, None) => {
            tracing::error!(timeout_secs = cfg.first_read_timeout.as_secs(), "cannot read the organization within organization.first_read_timeout, and no tree is saved: judging on the config policy until it is read, then judging those events again on it");
            metrics::counter!(crate::metric::ORG_FIRST_READ_FALLBACKS_TOTAL).increment(1);
            FirstRead::Failed
        }
    }
}

/// A live road's engine, started: the state file's snapshot restored, the organization read
/// (or its saved tree), SIGHUP and the watch listening.
pub struct Started {
    pub engine: Engine,
    pub live: Live,
    /// The drift alerts of the start-up read, against the tree saved with the checkpoint.
    pub drift: Option<Pending>,
}

/// Starts a live road's engine from its state file (whose snapshot is moved into it).
/// `None` when a stop signal came while the organization was being read.
pub async fn start(
    file: &std::path::Path,
    config: &Config,
    state: &mut crate::state::StateFile,
    output: build::OutputChoice,
    dead_letter: Option<PathBuf>,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<Option<Started>, super::RoadError> {
    let saved = state.state.engine.organization.clone();
    let first = first_read(config, saved.as_ref(), stop).await;
    if matches!(first, FirstRead::Stopped) {
        return Ok(None);
    }
    let organization = first.read().or(saved.as_ref()).map(|s| s.tree.clone());
    let engine = build::engine(
        config,
        build::Options {
            dead_letter,
            organization,
            // Moved, not copied: the next save overwrites it.
            restore: Some(std::mem::take(&mut state.state.engine)),
            ..build::Options::live(output, now_secs())
        },
    )
    .await
    .map_err(|source| super::RoadError::Build {
        file: file.to_path_buf(),
        source,
    })?;
    if first.failed() && saved.is_none() {
        engine.judge_provisionally();
    }
    let live = Live::start(file.to_path_buf(), config.clone(), first.failed());
    let drift = match first {
        FirstRead::Read(f) => Some(live.apply(
            &engine,
            Update {
                tree: f.tree,
                read_at: f.read_at,
                trigger: None,
            },
        )),
        _ => None,
    };
    Ok(Some(Started {
        engine,
        live,
        drift,
    }))
}

pub struct Live {
    path: PathBuf,
    config: Config,
    nudge: Arc<Nudge>,
    watch: Option<Watch>,
    hup: Option<Hangup>,
}

#[cfg(unix)]
type Hangup = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
async fn hangup(h: &mut Option<Hangup>) -> Option<()> {
    match h.as_mut() {
        Some(h) => h.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn hangup(_: &mut Option<Hangup>) -> Option<()> {
    std::future::pending().await
}

/// Puts the running value back into `new` for every section a reload cannot swap into a
/// running engine, and names those the new file changed (they need a restart). `old` is the
/// running config, about to be replaced: its fields are swapped, not copied.
fn keep_unswappable(old: &mut Config, new: &mut Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! keep {
        ($($field:ident => $name:expr),* $(,)?) => {$(
            if old.$field != new.$field {
                changed.push($name);
                std::mem::swap(&mut old.$field, &mut new.$field);
            }
        )*};
    }
    keep!(
        dedup => "[dedup]",
        decode => "[decode]",
        kinesis => "[source.kinesis]",
        firehose => "[source.firehose]",
        lambda => "[source.lambda]",
        checkpoint => "[checkpoint]",
        delivery => "[delivery], [[sinks]], [[routes]]",
    );
    changed
}

impl Live {
    /// Starts the watch (its first read one `refresh` from now, or at once when the start-up
    /// read failed) and listens for SIGHUP.
    pub fn start(path: PathBuf, config: Config, first_read_failed: bool) -> Live {
        let nudge = Arc::new(Nudge::default());
        let watch = config.organization.clone().map(|o| {
            let first = match first_read_failed {
                true => o.refresh.min(Duration::from_secs(60)),
                false => o.refresh,
            };
            Watch::spawn(o, first, nudge.clone())
        });
        #[cfg(unix)]
        let hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: the config is not reloaded");
                None
            }
        };
        #[cfg(not(unix))]
        let hup = None;
        Live {
            path,
            config,
            nudge,
            watch,
            hup,
        }
    }

    /// Where the roads report the stream's changes to the organization.
    pub fn nudge(&self) -> Arc<Nudge> {
        self.nudge.clone()
    }

    /// Waits for a new read of the organization or a SIGHUP, and applies it; gives the drift
    /// alerts to submit. Cancel-safe: nothing changes until an update or a signal arrives.
    pub async fn next(&mut self, engine: &Engine) -> Option<Pending> {
        enum Got {
            Update(Update),
            Hangup,
        }
        let got = tokio::select! {
            Some(u) = recv_update(&mut self.watch) => Got::Update(u),
            Some(()) = hangup(&mut self.hup) => Got::Hangup,
        };
        match got {
            Got::Update(u) => Some(self.apply(engine, u)),
            Got::Hangup => {
                self.reload(engine);
                None
            }
        }
    }

    /// A new read: drift against the tree the engine follows, then the new policy.
    pub fn apply(&self, engine: &Engine, u: Update) -> Pending {
        let before = engine.organization();
        let now = now_secs();
        let drifts = drift::compare(
            before.as_ref().map(|s| &s.tree),
            &u.tree,
            u.trigger.as_deref(),
        );
        let mut alerts = Vec::new();
        for d in &drifts {
            let (before, after) = (format!("{:?}", d.before), format!("{:?}", d.after));
            match d.is_alert() {
                true => {
                    tracing::warn!(account = %d.account, before = %before, after = %after, cause = %d.cause, "organization policy drift");
                    alerts.push(drift::alert(d, now));
                }
                false => {
                    tracing::info!(account = %d.account, before = %before, after = %after, cause = %d.cause, "an account's SCP region allow-list narrowed")
                }
            }
        }
        let policy = build::region_policy(&self.config, Some(&u.tree));
        let saved = SavedOrganization {
            read_at: u.read_at,
            tree: u.tree,
        };
        engine.apply_organization(policy, saved, alerts, now)
    }

    /// SIGHUP: the file is read and validated first, as at start-up; a bad one, an empty one,
    /// or one the running road would not start with (no `[policy]`, no `[source.…]` of the
    /// road) keeps the running config: all or nothing.
    fn reload(&mut self, engine: &Engine) {
        let file = self.path.display().to_string();
        let refuse = |problems: &[String]| {
            for p in problems {
                tracing::error!(file = %file, problem = %p, "reload refused");
            }
            tracing::error!(file = %file, problems = problems.len(), "the reloaded configuration is refused: the running configuration stays");
            metrics::counter!(crate::metric::CONFIG_RELOADS_TOTAL, "result" => "error")
                .increment(1);
        };
        let loaded = match config::load(&self.path, now_secs()) {
            Ok(l) => l,
            Err(e) => {
                let problems: Vec<String> = e.problems.iter().map(|p| p.to_string()).collect();
                return refuse(&problems);
            }
        };
        let problems = unstartable(&file, &self.config, &loaded);
        if !problems.is_empty() {
            return refuse(&problems);
        }
        for w in &loaded.warnings {
            tracing::warn!(problem = %w, "reload");
        }
        let mut new = loaded.config;
        let changes = what_changed(&self.config, &new);
        for section in keep_unswappable(&mut self.config, &mut new) {
            tracing::warn!(file = %file, section, "changed, but only a restart applies it: the running value stays");
        }
        let tree = engine.organization().map(|s| s.tree);
        build::reconfigure(engine, &new, tree.as_ref());
        if new.organization != self.config.organization {
            tracing::info!("[organization] changed: reading the organization again");
            self.watch = new
                .organization
                .clone()
                .map(|o| Watch::spawn(o, Duration::ZERO, self.nudge.clone()));
        }
        self.config = new;
        tracing::warn!(file = %file, changes = %changes, "configuration reloaded");
        metrics::counter!(crate::metric::CONFIG_RELOADS_TOTAL, "result" => "ok").increment(1);
    }
}

/// Why a reloaded config, valid on its own, is not one the running road would start with.
fn unstartable(file: &str, old: &Config, loaded: &config::Loaded) -> Vec<String> {
    let new = &loaded.config;
    let mut out = Vec::new();
    if loaded.tables.is_empty() {
        out.push(format!(
            "{file}: the file is empty: a reload must be a whole config"
        ));
        return out;
    }
    if !loaded.tables.contains("policy") {
        out.push(format!(
            "{file}: no [policy] table: every account would have no approved region"
        ));
    }
    if old.kinesis.is_some() && new.kinesis.is_none() {
        out.push(format!(
            "{file}: no [source.kinesis] table: `run` would not start with this file"
        ));
    }
    if old.firehose.is_some() && new.firehose.is_none() {
        out.push(format!(
            "{file}: no [source.firehose] table: `serve` would not start with this file"
        ));
    }
    out
}

/// What a reload changes, for its log line: the sections, and the rule and policy counts
/// before and after.
fn what_changed(old: &Config, new: &Config) -> String {
    let mut sections = Vec::new();
    macro_rules! diff {
        ($($field:ident => $name:expr),* $(,)?) => {$(
            if old.$field != new.$field {
                sections.push($name);
            }
        )*};
    }
    diff!(
        policy => "[policy]",
        rules => "rules",
        sigma => "sigma_rules",
        shaping => "[shaping]",
        organization => "[organization]",
        health => "[health]",
        sequences => "[[sequences]]",
        runbooks => "[runbooks]",
        console => "[console]",
    );
    let counts = |c: &Config| {
        format!(
            "{} filter rules, {} Sigma rule files, {} accounts, {} OUs, {} exemptions",
            c.rules.len(),
            c.sigma.files.len(),
            c.policy.accounts.len(),
            c.policy.ous.len(),
            c.policy.exempt.len()
        )
    };
    format!(
        "{}; before: {}; after: {}",
        match sections.is_empty() {
            true => "nothing swappable changed".to_string(),
            false => format!("changed {}", sections.join(", ")),
        },
        counts(old),
        counts(new)
    )
}

async fn recv_update(w: &mut Option<Watch>) -> Option<Update> {
    match w {
        Some(w) => w.updates.recv().await,
        None => std::future::pending().await,
    }
}
