//! A real HTTP/1.1 server on 127.0.0.1 for the sink tests (Slack, Splunk HEC, webhooks): it
//! records every request and answers from a script of faults (statuses with bodies and
//! `Retry-After`, slow answers), else 200; it can go down (connection refused) and come back
//! on the same port.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Reads one request: (head and body bytes, head text).
pub fn read_http(stream: &mut TcpStream) -> Option<(Vec<u8>, String)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).ok()?;
    buf.extend(body);
    Some((buf, head))
}

#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What the server answered.
    pub status: u16,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Fault {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<u64>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Fault {
    pub fn status(status: u16, body: &str) -> Fault {
        Fault {
            status,
            body: body.into(),
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
    pub fn retry_after(mut self, secs: u64) -> Fault {
        self.retry_after = Some(secs);
        self
    }
    pub fn slow(delay: Duration) -> Fault {
        Fault {
            delay,
            ..Fault::status(200, "ok")
        }
    }
}

/// An answer: status, extra headers, body.
pub type Reply = (u16, Vec<(String, String)>, String);
type Answer = dyn Fn(&Request) -> Reply + Send + Sync;

pub struct Server {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<VecDeque<Fault>>>,
    down: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Server {
    /// Answers 200 with `ok` unless scripted otherwise.
    pub fn start() -> Server {
        Server::start_with(|_| (200, "ok".into()))
    }

    /// Answers with `answer` unless scripted otherwise.
    pub fn start_with(
        answer: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static,
    ) -> Server {
        Server::start_full(move |r| {
            let (status, body) = answer(r);
            (status, Vec::new(), body)
        })
    }

    /// Like [`Server::start_with`], with response headers.
    pub fn start_full(answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let s = Server {
            port,
            requests: Arc::default(),
            script: Arc::default(),
            down: Arc::default(),
            stop: Arc::default(),
        };
        let (requests, script, down, stop) = (
            s.requests.clone(),
            s.script.clone(),
            s.down.clone(),
            s.stop.clone(),
        );
        let answer: Arc<Answer> = Arc::new(answer);
        std::thread::spawn(move || {
            let mut listener = Some(listener);
            while !stop.load(Ordering::SeqCst) {
                if down.load(Ordering::SeqCst) {
                    listener = None; // connection refused
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let l = match &listener {
                    Some(l) => l,
                    None => match TcpListener::bind(("127.0.0.1", port)) {
                        Ok(l) => listener.insert(l),
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                    },
                };
                l.set_nonblocking(true).unwrap();
                match l.accept() {
                    Ok((conn, _)) => {
                        let (requests, script, answer) =
                            (requests.clone(), script.clone(), answer.clone());
                        std::thread::spawn(move || serve(conn, requests, script, answer));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        s
    }

    /// The next requests get these answers, in order.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.script.lock().unwrap().extend(faults);
    }

    /// Down: connections are refused until `up`.
    pub fn down(&self) {
        self.down.store(true, Ordering::SeqCst);
    }
    pub fn up(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// The alert ids a webhook received, in order: the items of every accepted batch.
    pub fn webhook_alert_ids(&self) -> Vec<String> {
        self.accepted()
            .iter()
            .flat_map(|r| r.json().as_array().cloned().unwrap_or_default())
            .map(|v| v["alert_id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn serve(
    mut conn: TcpStream,
    requests: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<VecDeque<Fault>>>,
    answer: Arc<Answer>,
) {
    conn.set_nonblocking(false).ok();
    if let Some((raw, head)) = read_http(&mut conn) {
        let mut lines = head.lines();
        let first = lines.next().unwrap_or_default().to_string();
        let mut parts = first.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let body = raw[head.len()..].to_vec();
        let mut req = Request {
            at: Instant::now(),
            method,
            path,
            headers,
            body,
            status: 0,
        };
        let fault = script.lock().unwrap().pop_front();
        let (status, headers, text, retry_after) = match fault {
            Some(f) => {
                std::thread::sleep(f.delay);
                if f.status == 200 && f.delay > Duration::ZERO {
                    let (s, h, b) = answer(&req);
                    (s, h, b, None)
                } else {
                    (f.status, Vec::new(), f.body, f.retry_after)
                }
            }
            None => {
                let (s, h, b) = answer(&req);
                (s, h, b, None)
            }
        };
        req.status = status;
        requests.lock().unwrap().push(req);
        let mut resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
            text.len()
        );
        if let Some(s) = retry_after {
            resp.push_str(&format!("retry-after: {s}\r\n"));
        }
        for (k, v) in headers {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        resp.push_str(&text);
        let _ = conn.write_all(resp.as_bytes());
        let _ = conn.flush();
    }
}
