//! What the live roads (`run`, `serve`) share besides the engine: following the organization
//! (a read at start-up, a watch that reads it again, drift alerts) and SIGHUP (the config file
//! read again, validated, and its rules, policy, shaping and `[organization]` swapped into the
//! running engine between batches; a bad file keeps the running config).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use trailwatch::build;
use trailwatch::clock::now_secs;
use trailwatch::config::{self, Config};
use trailwatch::engine::{Engine, Pending};
use trailwatch::org::watch::{Nudge, Update, Watch};
use trailwatch::org::{self, drift};
use trailwatch::state::SavedOrganization;

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
            let wait = trailwatch::backoff::delay(
                Duration::from_secs(1),
                Duration::from_secs(30),
                attempt,
            );
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
            tracing::error!(saved_at = %trailwatch::event::format_utc_secs(s.read_at), "cannot read the organization: starting from the tree saved with the checkpoint");
            FirstRead::Failed
        }
        (None, None) => {
            tracing::error!(timeout_secs = cfg.first_read_timeout.as_secs(), "cannot read the organization within organization.first_read_timeout, and no tree is saved: judging on the config policy until it is read, then judging those events again on it");
            metrics::counter!("trailwatch_org_first_read_fallbacks_total").increment(1);
            FirstRead::Failed
        }
    }
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
            metrics::counter!("trailwatch_config_reloads_total", "result" => "error").increment(1);
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
        metrics::counter!("trailwatch_config_reloads_total", "result" => "ok").increment(1);
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
