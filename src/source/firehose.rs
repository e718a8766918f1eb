//! The Firehose HTTP endpoint delivery protocol (`trailwatch serve`): access keys checked in
//! constant time against every configured key (rotation), bodies capped before and after
//! gzip, the request envelope parsed, and the answers Firehose expects
//! (`{requestId, timestamp[, errorMessage]}`; 200 success, 413 permanent, anything else
//! retried). Retries carry the same request id: [`RequestLog`] remembers what became of each.

use std::collections::{HashMap, VecDeque};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::decode::gzip::{gunzip, GzipError};

/// The accepted access keys, kept as SHA-256 digests.
pub struct Keys(Vec<[u8; 32]>);

impl Keys {
    /// Comma-separated keys (surrounding spaces ignored, empty entries dropped).
    pub fn parse(text: &str) -> Keys {
        Keys(
            text.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| Sha256::digest(k.as_bytes()).into())
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `presented` is one of the keys. Every key is compared, byte by byte, without an
    /// early exit: the time does not depend on which key (or how much of one) matched. A
    /// missing key is compared like a wrong one.
    pub fn check(&self, presented: Option<&[u8]>) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.unwrap_or_default()).into();
        let mut any = 0u8;
        for k in &self.0 {
            let mut diff = 0u8;
            for (a, b) in k.iter().zip(digest.iter()) {
                diff |= a ^ b;
            }
            any |= u8::from(diff == 0);
        }
        std::hint::black_box(any) == 1 && presented.is_some()
    }
}

/// Why a request body cannot be processed, and the status Firehose gets.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("decompressed body larger than {0} bytes")]
    Bomb(usize),
    #[error("bad gzip: {0}")]
    Gzip(String),
    #[error("not a Firehose request body: {0}")]
    Json(String),
}

impl BodyError {
    /// 413 is Firehose's permanent failure (not retried); a body that cannot be read is
    /// retried (400), in case it was damaged on the way.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::TooLarge(_) | BodyError::Bomb(_) => 413,
            BodyError::Gzip(_) | BodyError::Json(_) => 400,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub request_id: String,
    #[serde(default)]
    pub timestamp: Option<i64>,
    pub records: Vec<Record>,
}

#[derive(Debug, Deserialize)]
pub struct Record {
    pub data: String,
}

/// Decompresses (if `gzip`) within `max_decompressed` and parses the envelope.
pub fn parse(
    body: &[u8],
    gzip: bool,
    max_body: usize,
    max_decompressed: usize,
) -> Result<Request, BodyError> {
    if body.len() > max_body {
        return Err(BodyError::TooLarge(max_body));
    }
    let plain;
    let text = if gzip {
        plain = gunzip(body, max_decompressed.min(max_body.saturating_mul(16))).map_err(
            |e| match e {
                GzipError::TooLarge { limit } => BodyError::Bomb(limit),
                GzipError::Corrupt(m) => BodyError::Gzip(m),
            },
        )?;
        &plain[..]
    } else {
        body
    };
    serde_json::from_slice(text).map_err(|e| BodyError::Json(e.to_string()))
}

/// The answer body: `requestId` echoed, `timestamp` in epoch ms, `errorMessage` on failure.
pub fn answer(request_id: &str, now_ms: i64, error: Option<&str>) -> String {
    let mut v = serde_json::json!({"requestId": request_id, "timestamp": now_ms});
    if let Some(e) = error {
        let e: String = e.chars().take(8192).collect();
        v["errorMessage"] = e.into();
    }
    v.to_string()
}

/// What became of a request id.
#[derive(Debug, Clone)]
pub enum Outcome<T> {
    /// Being processed (a concurrent retry is told to come back).
    InFlight,
    /// Answered 200: a retry is answered 200 again, nothing is processed twice.
    Done,
    /// Answered with an error after its alerts were made: a retry delivers these.
    Failed(T),
}

/// The last `cap` request ids and their outcomes.
pub struct RequestLog<T> {
    cap: usize,
    order: VecDeque<String>,
    map: HashMap<String, Outcome<T>>,
}

impl<T> RequestLog<T> {
    pub fn new(cap: usize) -> Self {
        RequestLog {
            cap: cap.max(1),
            order: VecDeque::new(),
            map: HashMap::new(),
        }
    }

    /// The outcome so far, marking a new id in flight.
    /// A failed request's kept value moves out to the caller (the retry owns it now).
    pub fn begin(&mut self, id: &str) -> Option<Outcome<T>> {
        if let Some(o) = self.map.get_mut(id) {
            return Some(match o {
                Outcome::Failed(_) => std::mem::replace(o, Outcome::InFlight),
                Outcome::InFlight => Outcome::InFlight,
                Outcome::Done => Outcome::Done,
            });
        }
        self.set(id, Outcome::InFlight);
        None
    }

    /// Forgets a request that could not be processed at all: its retry starts afresh.
    pub fn forget(&mut self, id: &str) {
        if self.map.remove(id).is_some() {
            self.order.retain(|o| o != id);
        }
    }

    /// Some request's alerts wait for its retry (they exist nowhere else).
    pub fn has_failed(&self) -> bool {
        self.map.values().any(|o| matches!(o, Outcome::Failed(_)))
    }

    pub fn set(&mut self, id: &str, o: Outcome<T>) {
        if self.map.insert(id.to_string(), o).is_none() {
            self.order.push_back(id.to_string());
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_configured_key_passes_and_nothing_else_does() {
        let k = Keys::parse(" old-key , new-key,,");
        assert_eq!(k.len(), 2);
        assert!(k.check(Some(b"old-key")));
        assert!(k.check(Some(b"new-key")));
        assert!(!k.check(Some(b"new-ke")));
        assert!(!k.check(Some(b"")));
        assert!(!k.check(None));
        assert!(!Keys::parse("").check(Some(b"")));
    }

    #[test]
    fn bodies_are_capped_before_and_after_gzip() {
        let body = br#"{"requestId":"r1","timestamp":1,"records":[{"data":"aGk="}]}"#;
        let r = parse(body, false, 1 << 20, 1 << 20).unwrap();
        assert_eq!(r.request_id, "r1");
        assert_eq!(r.records[0].data, "aGk=");
        assert_eq!(parse(body, false, 10, 1 << 20).unwrap_err().status(), 413);
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, &vec![b' '; 10 << 20]).unwrap();
        let bomb = e.finish().unwrap();
        assert!(bomb.len() < 64 << 10);
        assert_eq!(
            parse(&bomb, true, 1 << 20, 1 << 20).unwrap_err(),
            BodyError::Bomb(1 << 20)
        );
        assert_eq!(
            parse(b"\x1f\x8bnope", true, 100, 100).unwrap_err().status(),
            400
        );
        assert_eq!(
            parse(b"{\"records\":[]}", false, 100, 100)
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn answers_echo_the_id_with_an_integer_timestamp() {
        let v: serde_json::Value = serde_json::from_str(&answer("r1", 5, None)).unwrap();
        assert_eq!(v, serde_json::json!({"requestId": "r1", "timestamp": 5}));
        let v: serde_json::Value =
            serde_json::from_str(&answer("r1", 5, Some(&"x".repeat(9000)))).unwrap();
        assert_eq!(v["errorMessage"].as_str().unwrap().len(), 8192);
    }

    #[test]
    fn the_request_log_remembers_outcomes_and_forgets_the_oldest() {
        let mut log: RequestLog<u32> = RequestLog::new(2);
        assert!(log.begin("a").is_none());
        assert!(matches!(log.begin("a"), Some(Outcome::InFlight)));
        log.set("a", Outcome::Failed(7));
        assert!(log.has_failed());
        assert!(matches!(log.begin("a"), Some(Outcome::Failed(7))));
        assert!(!log.has_failed(), "being retried");
        log.set("a", Outcome::Done);
        assert!(log.begin("b").is_none());
        assert!(log.begin("c").is_none());
        assert!(log.begin("a").is_none(), "forgotten: cap 2");
    }
}
