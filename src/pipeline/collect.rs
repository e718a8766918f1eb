//! The visitor the live sources share (`run`, `serve`, Lambda): every decoded event goes
//! through the pipeline at one `now`, alerts and dead letters are collected for the caller to
//! deliver and report.

use super::Pipeline;
use crate::alert::Alert;
use crate::decode::{DeadLetter, Position, Visit};
use crate::event::Event;

pub struct Collect<'a> {
    pipeline: &'a mut Pipeline,
    now: i64,
    pub alerts: Vec<Alert>,
    pub events: u64,
    pub dead: Vec<DeadLetter>,
    /// A restart inside a KPL aggregate: in the record with this sequence number, the
    /// sub-records up to this index were done before and are skipped.
    skip: Option<(String, u64)>,
}

impl<'a> Collect<'a> {
    pub fn new(pipeline: &'a mut Pipeline, now: i64) -> Self {
        Collect {
            pipeline,
            now,
            alerts: Vec::new(),
            events: 0,
            dead: Vec::new(),
            skip: None,
        }
    }

    pub fn skipping(mut self, skip: Option<(String, u64)>) -> Self {
        self.skip = skip;
        self
    }

    fn done_before(&self, sequence_number: Option<&str>, sub: Option<usize>) -> bool {
        match (&self.skip, sub) {
            (Some((seq, last)), Some(sub)) => {
                sequence_number == Some(seq.as_str()) && sub as u64 <= *last
            }
            _ => false,
        }
    }
}

impl Visit for Collect<'_> {
    fn event(&mut self, ev: Event<'_>, pos: &Position) {
        if self.done_before(pos.sequence_number.as_deref(), pos.sub_sequence()) {
            return;
        }
        self.events += 1;
        self.pipeline.process(&ev, self.now, &mut self.alerts);
    }

    fn dead_letter(&mut self, dead: DeadLetter) {
        if !self.done_before(dead.sequence_number.as_deref(), dead.sub_sequence) {
            self.dead.push(dead);
        }
    }
}
