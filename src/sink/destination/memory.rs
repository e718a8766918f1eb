//! An in-memory destination for the engine's tests: it accepts, fails, stalls or rejects as
//! the test says, and keeps what it received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Outcome;
use crate::item::Item;
use crate::sink::error::SendError;

/// How the destination answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// A retryable failure (a 503, a refused connection).
    Fail,
    /// No answer at all (the worker's request timeout cuts it).
    Stall,
    /// A permanent refusal of every item (a 400).
    Reject,
}

#[derive(Clone)]
pub struct Memory {
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Vec<Item>>>,
}

impl Memory {
    pub fn new(mode: Mode) -> Memory {
        Memory {
            mode: Arc::new(Mutex::new(mode)),
            received: Arc::default(),
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The ids of the items delivered, in order.
    pub fn ids(&self) -> Vec<String> {
        self.received.lock().unwrap().iter().map(Item::id).collect()
    }

    pub fn received(&self) -> Vec<Item> {
        self.received.lock().unwrap().clone()
    }

    pub async fn send(&self, items: &[Arc<Item>]) -> Outcome {
        let mode = *self.mode.lock().unwrap();
        match mode {
            Mode::Accept => {
                let mut r = self.received.lock().unwrap();
                r.extend(items.iter().map(|i| (**i).clone()));
                Outcome::all(items.len())
            }
            Mode::Fail => Outcome::none(SendError::retry("503 from the test")),
            Mode::Stall => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Outcome::none(SendError::retry("stalled"))
            }
            Mode::Reject => Outcome::none(SendError::rejected("400 from the test")),
        }
    }
}
