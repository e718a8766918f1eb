//! A recording HTTP proxy on 127.0.0.1 in front of an emulator: every request line is kept
//! (the tests read which S3 prefixes were listed), and a rule may answer a request itself
//! with an error status instead of forwarding it (throttling, 5xx).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use super::http::read_http;

/// Decides whether to answer a request (method, path with query) with this status; `0`
/// forwards it and cuts the answer's body short (then closes the connection); `429` answers
/// as the AWS JSON protocols throttle (400 with `TooManyRequestsException`).
pub type Inject = dyn Fn(&str, &str) -> Option<u16> + Send + Sync;

pub struct Proxy {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Proxy {
    pub fn start(
        upstream: u16,
        inject: impl Fn(&str, &str) -> Option<u16> + Send + Sync + 'static,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let inject: Arc<Inject> = Arc::new(inject);
        let s = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (seen, inject) = (s.clone(), inject.clone());
                std::thread::spawn(move || serve(conn, upstream, seen, inject));
            }
        });
        Proxy { port, seen }
    }

    /// The `prefix` of every ListObjectsV2 call, decoded.
    pub fn listed_prefixes(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p)| m == "GET" && p.contains("list-type=2"))
            .map(|(_, p)| query(p, "prefix").unwrap_or_default())
            .collect()
    }

    /// Paths of the GetObject calls (without the query).
    pub fn gets(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p)| is_get_object(m, p))
            .map(|(_, p)| p.split('?').next().unwrap_or(p).to_string())
            .collect()
    }
}

/// A GetObject call (the SDK adds `?x-id=GetObject`).
pub fn is_get_object(method: &str, path: &str) -> bool {
    method == "GET" && !path.contains("list-type=") && path.trim_start_matches('/').contains('/')
}

/// A query parameter, percent-decoded.
pub fn query(path: &str, name: &str) -> Option<String> {
    let q = path.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

fn serve(
    mut conn: TcpStream,
    upstream: u16,
    seen: Arc<Mutex<Vec<(String, String)>>>,
    inject: Arc<Inject>,
) {
    while let Some((raw, head)) = read_http(&mut conn) {
        let mut line = head.lines().next().unwrap_or("").split(' ');
        let (method, path) = (
            line.next().unwrap_or("").to_string(),
            line.next().unwrap_or("").to_string(),
        );
        seen.lock().unwrap().push((method.clone(), path.clone()));
        let injected = inject(&method, &path);
        if let Some(429) = injected {
            // The AWS JSON protocols' throttling answer (Organizations, Kinesis, DynamoDB).
            let body = r#"{"__type":"TooManyRequestsException","message":"AWS Organizations can't complete your request because another request is already in progress. Try again later."}"#;
            let reply = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: injected-req-1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if conn.write_all(reply.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        if let Some(status) = injected.filter(|s| *s != 0) {
            let body = format!(
                "<Error><Code>{}</Code><Message>injected</Message></Error>",
                match status {
                    503 => "SlowDown",
                    _ => "InternalError",
                }
            );
            let reply = format!(
                "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if conn.write_all(reply.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        // Forward with `Connection: close`, so the answer ends where the upstream closes.
        let text = String::from_utf8_lossy(&raw[..head.len()]).to_string();
        let mut fwd: String = text
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && !l.is_empty())
            .map(|l| format!("{l}\r\n"))
            .collect();
        fwd.push_str("Connection: close\r\n\r\n");
        let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
            return;
        };
        let mut bytes = fwd.into_bytes();
        bytes.extend_from_slice(&raw[head.len()..]);
        let mut answer = Vec::new();
        if up.write_all(&bytes).is_err() || up.read_to_end(&mut answer).is_err() {
            return;
        }
        if injected == Some(0) {
            let head_end = answer
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(0, |i| i + 4);
            let cut = head_end + (answer.len() - head_end) / 2;
            let _ = conn.write_all(&answer[..cut]);
            return;
        }
        if conn.write_all(&answer).is_err() {
            return;
        }
    }
}
