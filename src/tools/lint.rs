//! `trailwatch lint`'s checks beyond the pattern linter ([`crate::filter::lint`]) and the
//! Sigma linter ([`crate::rules::sigma::lint`]): the policy's read prefixes, and reading a
//! sample of real records for the Sigma sample findings.

use std::path::PathBuf;

use crate::decode::{DeadLetter, Decoder, Limits, Position, Visit};
use crate::event::Event;
use crate::rules::sigma::sample::Sample;
use crate::source::replay::{self, Reader};

/// Read prefixes that exempt security-relevant calls (the policy's own classifier).
pub fn read_prefixes(prefixes: &[String], exceptions: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for p in prefixes {
        let risky = match p.as_str() {
            "Assume" => Some("AssumeRole* (credential issuance)"),
            "Get" if !exceptions.iter().any(|e| e == "GetSessionToken") => {
                Some("GetSessionToken and GetFederationToken (credential issuance); add them to read_prefix_exceptions")
            }
            _ => None,
        };
        if let Some(what) = risky {
            out.push(format!(
                "warning[TW013-read-prefix-policy]: read prefix {p:?} treats {what} as read-only when a record has no readOnly\n  --> policy.read_prefixes"
            ));
        }
    }
    out
}

/// A sample read whole, or what kept it from being read whole.
pub enum SampleRead {
    Whole(Sample),
    /// Inputs unread, records unreadable: findings on part of a sample would be said as if
    /// of all of it.
    Part {
        unread: usize,
        unreadable: u64,
    },
}

/// Reads `--sample` inputs (any form replay reads) into what the sample findings need; each
/// input or record that cannot be read is said through `say`.
pub fn read_sample(files: &[PathBuf], inputs: &[String], say: &dyn Fn(&str)) -> SampleRead {
    struct Observe<'s>(Sample, u64, &'s dyn Fn(&str));
    impl Visit for Observe<'_> {
        fn event(&mut self, ev: Event<'_>, pos: &Position) {
            match serde_json::from_str::<serde_json::Value>(ev.raw) {
                Ok(v) => self.0.observe(&v),
                // Decoded, but not a JSON value as a whole: as unreadable as a dead letter.
                Err(e) => self.dead_letter(DeadLetter::new(
                    pos,
                    ev.raw.as_bytes(),
                    format!("JSON: {e}"),
                )),
            }
        }
        fn dead_letter(&mut self, dead: DeadLetter) {
            self.1 += 1;
            (self.2)(&format!(
                "trailwatch lint: unreadable sample record at {} {}: {}",
                dead.input, dead.path, dead.reason
            ));
        }
    }
    let loaded = crate::rules::sigma::load_files(files, &Default::default());
    let mut seen = Observe(Sample::new(loaded.rules), 0, say);
    let reader = Reader {
        decoder: Decoder::new(Limits::default()),
        max_document_bytes: 1 << 30,
    };
    let (expanded, _, errors) = replay::expand(inputs);
    let mut unread = errors.len();
    for (name, e) in &errors {
        say(&format!("trailwatch lint: cannot read sample {name}: {e}"));
    }
    for input in &expanded {
        let read = replay::open(input).and_then(|r| reader.read(&input.name(), r, &mut seen));
        if let Err(e) = read {
            say(&format!(
                "trailwatch lint: cannot read sample {}: {e}",
                input.name()
            ));
            unread += 1;
        }
    }
    if unread > 0 || seen.1 > 0 {
        return SampleRead::Part {
            unread,
            unreadable: seen.1,
        };
    }
    SampleRead::Whole(seen.0)
}
