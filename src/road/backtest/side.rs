//! One config's side of a backtest: its engine (on event time, its output the caller) and
//! its event-time shaping; and how a chunk's alerts are marked against the baseline's.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crate::alert::Alert;
use crate::backtest::{Mark, Report, Timeline};
use crate::build::OutputChoice;
use crate::config::Config;
use crate::engine::parallel::Judged;
use crate::engine::{Counts, Engine, Pending};
use crate::item::Item;
use crate::shaping::{NotifyItem, Shaper};

use super::super::RoadError;

/// Where `--alerts` goes: a JSON line per alert as it comes, or (`--alerts-format text`) the
/// alerts kept for one report, grouped by rule, written at the end.
pub(super) struct AlertsOut {
    w: BufWriter<File>,
    /// Text: the alerts so far, and their marks (shown with a baseline only).
    text: Option<Vec<(Alert, Mark)>>,
    baseline: bool,
}

impl AlertsOut {
    pub fn new(file: File, text: bool, baseline: bool) -> AlertsOut {
        AlertsOut {
            w: BufWriter::new(file),
            text: text.then(Vec::new),
            baseline,
        }
    }

    fn put(&mut self, mark: Mark, a: &Alert) -> io::Result<()> {
        if let Some(kept) = self.text.as_mut() {
            kept.push((a.clone(), mark));
            return Ok(());
        }
        let mark = serde_json::to_string(&mark)?;
        let alert = serde_json::to_string(&Item::Siem(a.clone()).native())?;
        writeln!(self.w, "{{\"diff\":{mark},\"alert\":{alert}}}")
    }

    /// Writes the text report (if text) and flushes.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(kept) = self.text.take() {
            let label = |m: Mark| match m {
                Mark::Added => "added",
                Mark::Removed => "removed",
                Mark::Same => "same",
            };
            let marked: Vec<(&Alert, Option<&str>)> = kept
                .iter()
                .map(|(a, m)| (a, self.baseline.then(|| label(*m))))
                .collect();
            self.w
                .write_all(crate::render::report::text_marked(&marked).as_bytes())?;
        }
        self.w.flush()
    }
}

/// One config's engine and its event-time shaping.
pub(super) struct Side {
    pub engine: Engine,
    pub timeline: Timeline,
    pub counts: Counts,
}

impl Side {
    pub fn new(
        rt: &tokio::runtime::Runtime,
        config: &Config,
        dead_letter: Option<PathBuf>,
    ) -> Result<Side, RoadError> {
        let engine =
            super::super::offline_engine(config, OutputChoice::Caller, false, dead_letter, rt)?;
        Ok(Side {
            engine,
            timeline: Timeline::new(Shaper::for_rules(&config.shaping, &config.rules)),
            counts: Counts::default(),
        })
    }

    /// Takes a chunk with judge `which`'s alerts; returns the alerts admitted.
    pub fn take(
        &mut self,
        rt: &tokio::runtime::Runtime,
        judged: &mut Judged,
        which: usize,
        wall: i64,
    ) -> Vec<Alert> {
        let evaluated = {
            let mut feed = self.engine.feed(wall);
            feed.take(judged, which);
            feed.finish()
        };
        self.counts += evaluated.counts;
        if let Some(e) = evaluated.dead_letter_error {
            tracing::error!(error = %e, "cannot write the dead-letter file");
        }
        alerts_of(rt, &self.engine, evaluated.pending)
    }
}

/// The siem alerts of a submission (the engine's output is the caller here).
fn alerts_of(rt: &tokio::runtime::Runtime, engine: &Engine, p: Pending) -> Vec<Alert> {
    let siem: Vec<Arc<Item>> = p
        .items()
        .iter()
        .filter(|i| matches!(&***i, Item::Siem(_)))
        .cloned()
        .collect();
    // Accepted at once (Output::Caller): settles the engine's books, and keeps nothing of
    // the items, so each alert is taken back without a copy.
    let _ = rt.block_on(async { engine.submit(p).await.wait().await });
    siem.into_iter()
        .filter_map(|i| match Arc::unwrap_or_clone(i) {
            Item::Siem(a) => Some(a),
            Item::Notify(_) => None,
        })
        .collect()
}

/// Marks a chunk's alerts against the baseline's (by alert id), counts them, writes them,
/// and hands them to each side's timeline.
pub(super) fn compare(
    report: &mut Report,
    sides: &mut [Side],
    new: Vec<Alert>,
    base: Option<Vec<Alert>>,
    mut lines: Option<&mut AlertsOut>,
) -> io::Result<()> {
    let base_ids: HashSet<&str> = base.iter().flatten().map(|a| a.alert_id.as_str()).collect();
    let new_ids: HashSet<&str> = new.iter().map(|a| a.alert_id.as_str()).collect();
    let mut write = |mark: Mark, a: &Alert| -> io::Result<()> {
        match lines.as_mut() {
            Some(out) => out.put(mark, a),
            None => Ok(()),
        }
    };
    for a in &new {
        let mark = match base_ids.contains(a.alert_id.as_str()) {
            true => Mark::Same,
            false => Mark::Added,
        };
        report.alert(a, false, Some(mark));
        write(mark, a)?;
    }
    for b in base.iter().flatten() {
        let removed = !new_ids.contains(b.alert_id.as_str());
        report.alert(b, true, removed.then_some(Mark::Removed));
        if removed {
            write(Mark::Removed, b)?;
        }
    }
    drop(new_ids);
    drop(base_ids);
    for a in new {
        sides[0].timeline.push(a);
    }
    if let (Some(base), Some(side)) = (base, sides.get_mut(1)) {
        for b in base {
            side.timeline.push(b);
        }
    }
    Ok(())
}

pub(super) fn tally_notify(report: &mut Report, items: &mut Vec<NotifyItem>, baseline: bool) {
    for n in items.drain(..) {
        report.notify(&n.alert, baseline);
    }
}
