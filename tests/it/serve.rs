//! Issue 7: `trailwatch serve`, the Firehose HTTP endpoint, driven with real-shaped Firehose
//! requests over HTTP (and HTTPS with a certificate made here): CloudWatch Logs envelopes of
//! real records, gzip and not; wrong, missing and rotated keys; oversized and gzip-bomb
//! bodies; malformed JSON and base64; retries with the same request id.

use crate::common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::emu::{expected, free_port, http_get};
use crate::common::*;
use serde_json::{json, Value};

struct Serve {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(cfg: &Path, port: u16, extra: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
            .args(["serve", "--config", &cfg.display().to_string()])
            .args(extra)
            .env("TW_FIREHOSE_KEYS", "old-key-1234, new-key-5678")
            .env("TRAILWATCH_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Serve { child, port, lines }
    }

    fn alerts(&self, wait: Duration) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(wait) {
            out.push(
                serde_json::from_str::<Value>(&l).unwrap()["alert_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        out
    }
}

fn config(t: &Tmp, port: u16, extra: &str) -> std::path::PathBuf {
    t.write(
        "serve.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[checkpoint]\npath = \"{}\"\ninterval = \"1h\"\n\n[source.firehose]\nlisten = \"127.0.0.1:{port}\"\naccess_keys_env = \"TW_FIREHOSE_KEYS\"\nmax_body_bytes = 262144\n{extra}",
            t.path("state/serve.json").display()
        ),
    )
}

/// A Firehose request body: each record a gzip'd CloudWatch Logs envelope of one record.
fn body(id: &str, recs: &[String]) -> String {
    let records: Vec<Value> = recs
        .iter()
        .map(|r| json!({"data": b64(&gz(cwl_data(&[r]).as_bytes()))}))
        .collect();
    json!({"requestId": id, "timestamp": 1_767_225_600_000i64, "records": records}).to_string()
}

struct Resp {
    status: u16,
    json: Value,
}

fn post(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    key: Option<&str>,
    body: Vec<u8>,
    gzip: bool,
) -> Resp {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-amz-firehose-protocol-version", "1.0")
            .header("x-amz-firehose-request-id", id)
            .header(
                "x-amz-firehose-source-arn",
                "arn:aws:firehose:us-east-1:111122223333:deliverystream/org-cloudtrail",
            );
        if let Some(k) = key {
            req = req.header("x-amz-firehose-access-key", k);
        }
        if gzip {
            req = req.header("content-encoding", "gzip");
        }
        let r = req.body(body).send().await.unwrap();
        let status = r.status().as_u16();
        let json = r.json::<Value>().await.unwrap_or(Value::Null);
        Resp { status, json }
    })
}

/// A Firehose request of these records with a valid key.
fn post_records(client: &reqwest::Client, url: &str, id: &str, recs: &[String]) -> Resp {
    post(
        client,
        url,
        id,
        Some("old-key-1234"),
        body(id, recs).into_bytes(),
        false,
    )
}

/// Delivery settings that give up on a down sink quickly.
const FAST_RETRY: &str = "accept_within = \"100ms\"\ntimeout = \"1s\"\nmax_attempts = 1\nbackoff_initial = \"50ms\"\nbackoff_max = \"200ms\"\n";

/// `[delivery]` with these settings and one webhook sink `hook` taking the siem stream.
fn webhook_delivery(state_dir: &Path, url: &str, delivery: &str, sink: &str) -> String {
    format!(
        "\n[delivery]\nstate_dir = \"{}\"\n{delivery}\n[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{url}\"\n{sink}\n[[routes]]\nstream = \"siem\"\nsinks = [\"hook\"]\n",
        state_dir.display()
    )
}

/// Waits until the webhook has received exactly the alerts `want` (as a set).
fn wait_for_webhook(hook: &common::http::Server, want: &BTreeSet<String>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while hook
        .webhook_alert_ids()
        .into_iter()
        .collect::<BTreeSet<_>>()
        != *want
    {
        assert!(
            Instant::now() < deadline,
            "{} of {} alerts delivered",
            hook.webhook_alert_ids().len(),
            want.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn firehose_requests_are_authenticated_capped_decoded_and_idempotent() {
    let t = Tmp::new();
    let port = free_port();
    let cfg = config(&t, port, "");
    let dead = t.path("dead.jsonl");
    let serve = Serve::start(&cfg, port, &["--dead-letter", &dead.display().to_string()]);
    let url = format!("http://127.0.0.1:{}/", serve.port);
    let c = reqwest::Client::new();
    let recs = stratus();
    let (first, second) = recs.split_at(10);
    let want1 = expected(&cfg, &t, first);
    assert!(!want1.is_empty());

    // A real-shaped request: 200 {requestId, timestamp}; its alerts are on stdout.
    let r = post(
        &c,
        &url,
        "req-1",
        Some("old-key-1234"),
        body("req-1", first).into_bytes(),
        false,
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["requestId"], "req-1");
    assert!(r.json["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    assert!(r.json.get("errorMessage").is_none());
    let got = serve.alerts(Duration::from_millis(500));
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want1);

    // The same request again (Firehose retries): 200, nothing alerts twice.
    let r = post(
        &c,
        &url,
        "req-1",
        Some("old-key-1234"),
        body("req-1", first).into_bytes(),
        false,
    );
    assert_eq!(r.status, 200);
    assert!(serve.alerts(Duration::from_millis(300)).is_empty());

    // Wrong and missing keys: the same 401, before the body is even read (an oversized body
    // does not get a 413 out of a stranger).
    let huge = vec![b'x'; 1 << 20];
    let wrong = post(&c, &url, "req-x", Some("old-key-123"), huge.clone(), false);
    let missing = post(&c, &url, "req-x", None, huge, false);
    for r in [&wrong, &missing] {
        assert_eq!(r.status, 401);
        assert_eq!(r.json["errorMessage"], "unauthorized");
    }
    // Issue 28, item 7: a stranger's request id is echoed cut to 128 characters (it was
    // echoed whole, whatever its size).
    let long_id = "x".repeat(8000);
    let r = post(&c, &url, &long_id, None, b"{}".to_vec(), false);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json["requestId"].as_str().unwrap().len(),
        128,
        "{}",
        r.json
    );
    // A body cut short (fewer bytes than its Content-Length): 400, which Firehose retries;
    // never 413, its permanent failure (it was 413).
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
        let head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Amz-Firehose-Access-Key: old-key-1234\r\nX-Amz-Firehose-Request-Id: req-cut\r\nContent-Length: 1000\r\n\r\n";
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&[b' '; 100]).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("cut short"), "{answer}");
    }

    // The rotated key, gzip'd content encoding.
    let want2 = expected(&cfg, &t, second);
    let r = post(
        &c,
        &url,
        "req-2",
        Some("new-key-5678"),
        gz(body("req-2", second).as_bytes()),
        true,
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let got = serve.alerts(Duration::from_millis(500));
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want2);

    // Too large: 413 (Firehose's permanent failure); a gzip bomb likewise.
    let r = post(
        &c,
        &url,
        "req-3",
        Some("old-key-1234"),
        vec![b' '; 300_000],
        false,
    );
    assert_eq!(r.status, 413);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut e, &vec![b' '; 8 << 20]).unwrap(); // 8 MiB: past 16 x max_body_bytes
    let bomb = e.finish().unwrap();
    assert!(
        bomb.len() < 262_144,
        "the compressed bomb itself is under the body limit"
    );
    let r = post(&c, &url, "req-4", Some("old-key-1234"), bomb, true);
    assert_eq!(r.status, 413, "{}", r.json);

    // Not a Firehose body: 400 with a reason (retried by Firehose).
    let r = post(
        &c,
        &url,
        "req-5",
        Some("old-key-1234"),
        b"{\"records\": 7".to_vec(),
        false,
    );
    assert_eq!(r.status, 400);
    assert!(r.json["errorMessage"]
        .as_str()
        .unwrap()
        .contains("not a Firehose request body"));

    // A bad base64 record and a bad gzip record are dead letters; the others still alert.
    let good = &[with_fields(
        &recs[0],
        json!({"eventID": "firehose-fresh-1"}),
    )];
    let mut b: Value = serde_json::from_str(&body("req-6", good)).unwrap();
    b["records"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"data": "%%% not base64"}));
    b["records"]
        .as_array_mut()
        .unwrap()
        .insert(1, json!({"data": b64(b"\x1f\x8b\x08\x00broken")}));
    let r = post(
        &c,
        &url,
        "req-6",
        Some("old-key-1234"),
        b.to_string().into_bytes(),
        false,
    );
    assert_eq!(r.status, 200);
    let got = serve.alerts(Duration::from_millis(500));
    assert_eq!(
        got.iter().cloned().collect::<BTreeSet<_>>(),
        expected(&cfg, &t, good)
    );
    let dl: Vec<Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dl.len(), 2, "{dl:?}");
    assert_eq!(dl[0]["input"], "firehose:req-6");
    assert_eq!(dl[0]["path"], "records[0]");
    assert!(dl[0]["reason"].as_str().unwrap().contains("base64"));
    assert_eq!(dl[1]["path"], "records[1]/base64");
    assert!(dl[1]["reason"].as_str().unwrap().contains("gzip"));
}

#[test]
fn a_missing_access_key_setting_fails_at_start_up() {
    let t = Tmp::new();
    let cfg = t.write(
        "nokeys.toml",
        "[policy]\napproved_regions = [\"us-east-1\"]\n[source.firehose]\nlisten = \"127.0.0.1:9\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["serve", "--config", &cfg.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("source.firehose.access_keys_env"), "{text}");
}

/// HTTPS from PEM files (a certificate made here), with a webhook sink: the 200 comes only
/// once the alerts are delivered, so they are at the webhook when the answer arrives.
#[test]
fn https_with_sinks_answers_after_delivery() {
    use common::http::Server;
    let t = Tmp::new();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = t.write("cert.pem", cert.cert.pem());
    let key_path = t.write("key.pem", cert.signing_key.serialize_pem());
    let hook = Server::start();
    let port = free_port();
    let cfg = config(
        &t,
        port,
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n\n[delivery]\nstate_dir = \"{}\"\n\n[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n\n[[routes]]\nstream = \"siem\"\nsinks = [\"hook\"]\n",
            cert_path.display(),
            key_path.display(),
            t.path("state").display(),
            hook.url("/in")
        ),
    );
    let _serve = Serve::start(&cfg, port, &[]);
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let recs = stratus();
    let want = expected(&cfg, &t, &recs[..10]);
    let url = format!("https://localhost:{port}/firehose");
    let r = post(
        &client,
        &url,
        "tls-1",
        Some("new-key-5678"),
        body("tls-1", &recs[..10]).into_bytes(),
        false,
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let got: BTreeSet<String> = hook.webhook_alert_ids().into_iter().collect();
    assert_eq!(got, want, "delivered before the 200");
    // Plain HTTP to the TLS port is not served.
    let plain = reqwest::Client::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let res = rt.block_on(
        plain
            .post(format!("http://127.0.0.1:{port}/"))
            .body("{}")
            .send(),
    );
    assert!(res.is_err() || !res.unwrap().status().is_success());
}

/// The dedup state survives a graceful restart (`[checkpoint] path`): the same events sent
/// again under a new request id after the restart do not alert again.
#[test]
fn dedup_state_survives_a_restart() {
    let t = Tmp::new();
    let port = free_port();
    let state = t.path("state/serve.json");
    let cfg = config(&t, port, "");
    let recs = stratus();
    let want = expected(&cfg, &t, &recs[..10]);
    let c = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    let serve = Serve::start(&cfg, port, &[]);
    let r = post(
        &c,
        &url,
        "a-1",
        Some("old-key-1234"),
        body("a-1", &recs[..10]).into_bytes(),
        false,
    );
    assert_eq!(r.status, 200);
    let got = serve.alerts(Duration::from_millis(500));
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    let mut serve = serve;
    let _ = Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status();
    assert_eq!(
        serve.child.wait().unwrap().code(),
        Some(0),
        "graceful shutdown"
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    // The ids are in the id log beside the state file.
    assert!(
        saved["ids"]["entries"].as_u64().is_some_and(|n| n > 0),
        "{saved}"
    );

    let serve = Serve::start(&cfg, port, &[]);
    let r = post(
        &c,
        &url,
        "b-1",
        Some("old-key-1234"),
        body("b-1", &recs[..10]).into_bytes(),
        false,
    );
    assert_eq!(r.status, 200);
    assert!(
        serve.alerts(Duration::from_millis(500)).is_empty(),
        "the same events after a restart are duplicates"
    );
}

/// Issue 12: slow and stalled clients never hold `serve`. Four clients with a valid key stall
/// their bodies (as many as `max_concurrency`), 200 more stall in the middle of their headers;
/// a good client is still answered at once. The body stallers get 408 at `request_timeout`,
/// the header stallers are closed at `header_read_timeout`, an idle kept-alive connection at
/// `idle_timeout`, and connections over `max_connections` are closed at once.
#[test]
fn slow_and_stalled_clients_do_not_hold_the_endpoint() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let t = Tmp::new();
    let port = free_port();
    let cfg = config(
        &t,
        port,
        "max_concurrency = 4\nrequest_timeout = \"3s\"\nheader_read_timeout = \"2s\"\nidle_timeout = \"3s\"\nmax_connections = 220\n",
    );
    let serve = Serve::start(&cfg, port, &[]);
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        s
    };
    // Answers 0 bytes (closed) or the status line's code.
    let outcome = |s: &mut TcpStream| -> (Option<u16>, Duration) {
        let started = Instant::now();
        let mut buf = [0u8; 256];
        let code = match s.read(&mut buf) {
            Ok(n) if n >= 12 => std::str::from_utf8(&buf[9..12])
                .ok()
                .and_then(|c| c.parse().ok()),
            _ => None,
        };
        (code, started.elapsed())
    };
    let started = Instant::now();
    let mut body_stallers: Vec<TcpStream> = (0..4)
        .map(|i| {
            let mut s = connect();
            write!(
                s,
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Amz-Firehose-Request-Id: stall-{i}\r\nX-Amz-Firehose-Access-Key: old-key-1234\r\nContent-Length: 5000\r\n\r\n{{\"requestId\""
            )
            .unwrap();
            s
        })
        .collect();
    let mut header_stallers: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = connect();
            s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Fire")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // A good client goes on, on a kept-alive connection.
    let recs = stratus();
    let good = body("good-1", &recs[..3]);
    let mut keep = connect();
    let asked = Instant::now();
    write!(
        keep,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Amz-Firehose-Request-Id: good-1\r\nX-Amz-Firehose-Access-Key: new-key-5678\r\nContent-Length: {}\r\n\r\n{good}",
        good.len()
    )
    .unwrap();
    let (code, _) = outcome(&mut keep);
    assert_eq!(code, Some(200), "the good client is answered");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "at once: {:?}",
        asked.elapsed()
    );

    // Body stallers: 408 at request_timeout (3 s), not before.
    for s in &mut body_stallers {
        let (code, _) = outcome(s);
        assert_eq!(code, Some(408));
    }
    let at = started.elapsed();
    assert!(
        at >= Duration::from_millis(2900) && at < Duration::from_secs(6),
        "408 after {at:?}"
    );
    // Header stallers: closed (no answer) at header_read_timeout (2 s).
    for s in &mut header_stallers {
        let (code, _) = outcome(s);
        assert_eq!(code, None, "a header staller gets no answer, only a close");
    }
    assert!(started.elapsed() < Duration::from_secs(7));
    drop(header_stallers);
    drop(body_stallers);

    // The kept-alive connection is closed once idle for idle_timeout (3 s after its answer).
    let (code, idle) = outcome(&mut keep);
    assert_eq!(code, None);
    let since_answer = asked.elapsed();
    assert!(
        since_answer >= Duration::from_millis(2900) && since_answer < Duration::from_secs(6),
        "idle close {since_answer:?} after the answer ({idle:?} waiting)"
    );

    // Over max_connections (220): the extra connections are closed at once.
    std::thread::sleep(Duration::from_millis(300));
    let held: Vec<TcpStream> = (0..230).map(|_| connect()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let closed_at_once = held
        .iter()
        .filter(|s| {
            s.set_nonblocking(true).unwrap();
            matches!((&**s).read(&mut [0u8; 16]), Ok(0))
        })
        .count();
    assert_eq!(
        closed_at_once, 10,
        "of 230 connections, those over max_connections = 220 are closed at once"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(300));

    // Bodies being read are bounded in memory: max_concurrency × max_body_bytes (1 MiB here)
    // of claimed Content-Length; past it, a new request is refused at once with 503.
    let big: Vec<TcpStream> = (0..5)
        .map(|i| {
            let mut s = connect();
            write!(
                s,
                "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Firehose-Request-Id: big-{i}\r\nX-Amz-Firehose-Access-Key: old-key-1234\r\nContent-Length: 262144\r\n\r\n{{"
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            s
        })
        .collect();
    let mut fifth = big.into_iter().last().unwrap();
    fifth
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let (code, _) = outcome(&mut fifth);
    assert_eq!(
        code,
        Some(503),
        "the fifth full-size body is over the budget"
    );
    // And the endpoint still answers.
    let client = reqwest::Client::new();
    let r = post(
        &client,
        &format!("http://127.0.0.1:{}/", serve.port),
        "good-2",
        Some("old-key-1234"),
        body("good-2", &recs[3..5]).into_bytes(),
        false,
    );
    assert_eq!(r.status, 200);
}

/// A tmpfs mounted for one test (root only), unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Issue 12: the spool's disk fills while the webhook is down. No request is answered 200
/// unless its alerts are spooled; once space returns and the webhook is back, every alert of
/// every request answered 200 (and of the failed ones, retried) arrives, once. Needs root to
/// mount a 256 KiB tmpfs (CI runs as root); elsewhere the spool's unit tests cover it with a
/// write-failing layer, and `scripts/test` says this one was skipped.
#[test]
fn a_full_spool_disk_answers_500_and_loses_nothing_once_space_returns() {
    let t = Tmp::new();
    let Some(fs) = Tmpfs::mount(&t.path("spoolfs"), "256k") else {
        // Never passed silently: scripts/test sets this where it is not root, and says so.
        assert!(
            std::env::var("TRAILWATCH_SKIP_TMPFS").is_ok_and(|v| v == "1"),
            "cannot mount a tmpfs: run as root, or set TRAILWATCH_SKIP_TMPFS=1 to skip this test"
        );
        eprintln!("TRAILWATCH_SKIP_TMPFS=1: the full spool disk is NOT tested");
        return;
    };
    let hook = common::http::Server::start();
    hook.down();
    let port = free_port();
    let cfg = config(
        &t,
        port,
        &webhook_delivery(
            &fs.0,
            &hook.url("/in"),
            FAST_RETRY,
            "batch = 10\ninclude_event = true\n",
        ),
    );
    let mport = free_port();
    let serve = Serve::start(
        &cfg,
        port,
        &["--metrics-addr", &format!("127.0.0.1:{mport}")],
    );
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    let recs = many_records(40);
    let requests: Vec<(String, &[String])> = recs
        .chunks(10)
        .enumerate()
        .map(|(i, c)| (format!("req-{i}"), c))
        .collect();
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    for (id, chunk) in &requests {
        let r = post_records(&client, &url, id, chunk);
        match r.status {
            200 => ok.push(id.clone()),
            500 => failed.push(id.clone()),
            s => panic!("{id}: unexpected {s}: {}", r.json),
        }
    }
    assert!(!ok.is_empty(), "some requests fit in the spool");
    assert!(
        !failed.is_empty(),
        "the spool's disk filled: some requests were refused"
    );
    // Not ready while the spool cannot be written, naming the sink.
    let (status, body) = http_get(mport, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("sink hook: its spool cannot be written"),
        "{body}"
    );

    // Space returns, then the webhook; Firehose retries what failed.
    fs.resize("64m");
    hook.up();
    for id in &failed {
        let chunk = requests.iter().find(|(i, _)| i == id).unwrap().1;
        let r = post_records(&client, &url, id, chunk);
        assert_eq!(
            r.status, 200,
            "{id} retried once space returned: {}",
            r.json
        );
    }
    let want = expected(&cfg, &t, &recs);
    wait_for_webhook(&hook, &want, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let got = hook.webhook_alert_ids();
    assert_eq!(got.len(), want.len(), "each alert once");
    let (status, body) = http_get(mport, "/readyz");
    assert_eq!(
        status, 200,
        "ready again once the spool takes writes: {body}"
    );
    drop(serve);
}

/// Issue 12: a sink that takes 2 s per request, and its spool is not empty: new alerts go
/// straight behind the spool, so each request is answered at once instead of waiting for
/// the request the sink is draining.
#[test]
fn a_slow_sink_with_a_spool_does_not_hold_new_requests() {
    let t = Tmp::new();
    let hook = common::http::Server::start_with(|_| {
        std::thread::sleep(Duration::from_secs(2));
        (200, "ok".into())
    });
    let port = free_port();
    let cfg = config(
        &t,
        port,
        &webhook_delivery(
            &t.path("state"),
            &hook.url("/in"),
            "accept_within = \"300ms\"\ntimeout = \"5s\"\n",
            "batch = 2\n",
        ),
    );
    let _serve = Serve::start(&cfg, port, &[]);
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    let recs = many_records(1);
    let chunks: Vec<&[String]> = recs.chunks(5).collect();
    // The first request's alerts go direct; that request outlives accept_within, so they are
    // spooled (answered after the 2 s request).
    let r = post_records(&client, &url, "slow-0", chunks[0]);
    assert_eq!(r.status, 200);
    for (i, chunk) in chunks.iter().enumerate().skip(1) {
        let id = format!("slow-{i}");
        let asked = Instant::now();
        let r = post_records(&client, &url, &id, chunk);
        assert_eq!(r.status, 200);
        assert!(
            asked.elapsed() < Duration::from_millis(1000),
            "{id} waited {:?} behind the sink's request in flight",
            asked.elapsed()
        );
    }
    let want = expected(&cfg, &t, &recs);
    wait_for_webhook(&hook, &want, Duration::from_secs(90));
}

/// Issue 12: a damaged spool under `serve`. One flipped byte costs that record only: the bad
/// bytes are quarantined, logged and counted, and every other spooled alert is delivered. A
/// garbled cursor afterwards is counted, and the delivered-ids journal keeps the re-read
/// segment from going out again.
#[test]
fn a_damaged_spool_costs_only_the_damaged_record_and_a_garbled_cursor_repeats_nothing() {
    let t = Tmp::new();
    let hook = common::http::Server::start();
    hook.down();
    let port = free_port();
    let cfg = config(
        &t,
        port,
        &webhook_delivery(
            &t.path("state"),
            &hook.url("/in"),
            FAST_RETRY,
            "batch = 3\n",
        ),
    );
    let recs = many_records(2);
    let want = expected(&cfg, &t, &recs);
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    let serve = Serve::start(&cfg, port, &[]);
    for (i, chunk) in recs.chunks(8).enumerate() {
        let id = format!("d-{i}");
        let r = post_records(&client, &url, &id, chunk);
        assert_eq!(r.status, 200);
    }
    drop(serve);
    // Flip one byte inside the fourth record's payload.
    let seg = t.path("state/spool/hook/00000000000000000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let marks: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"\xA5TW1")
        .map(|(i, _)| i)
        .collect();
    assert!(
        marks.len() >= want.len(),
        "all {} alerts spooled",
        want.len()
    );
    let victim_start = marks[3];
    bytes[victim_start + 40] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();

    hook.up();
    let mport = free_port();
    let maddr = format!("127.0.0.1:{mport}");
    let serve = Serve::start(&cfg, port, &["--metrics-addr", &maddr]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while hook.webhook_alert_ids().len() < want.len() - 1 {
        assert!(
            Instant::now() < deadline,
            "only {} delivered",
            hook.webhook_alert_ids().len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let got: BTreeSet<String> = hook.webhook_alert_ids().into_iter().collect();
    assert_eq!(
        got.len(),
        want.len() - 1,
        "exactly the damaged record is lost"
    );
    assert!(got.is_subset(&want));
    let quarantined: Vec<_> = std::fs::read_dir(t.path("state/spool/hook/quarantine"))
        .unwrap()
        .collect();
    assert_eq!(quarantined.len(), 1, "the bad bytes are copied out");
    let (_, metrics) = common::emu::http_get(mport, "/metrics");
    assert!(
        metrics.contains("trailwatch_sink_spool_corrupt_total{sink=\"hook\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("trailwatch_sink_spool_corrupt_bytes_total{sink=\"hook\"}"));
    if let Ok(m) = std::fs::metadata(&seg) {
        assert_eq!(m.len(), bytes.len() as u64, "nothing is cut away");
    }
    drop(serve);

    // A garbled cursor: reading starts at the oldest segment; the journal skips what was
    // delivered, so nothing goes out twice.
    std::fs::write(t.path("state/spool/hook/cursor"), b"{\"segment\":1,\"offs").unwrap();
    let before = hook.webhook_alert_ids().len();
    let serve = Serve::start(&cfg, port, &["--metrics-addr", &maddr]);
    std::thread::sleep(Duration::from_millis(1500));
    let (_, metrics) = common::emu::http_get(mport, "/metrics");
    assert!(
        metrics.contains("trailwatch_sink_spool_cursor_invalid_total{sink=\"hook\"} 1"),
        "{metrics}"
    );
    assert_eq!(
        hook.webhook_alert_ids().len(),
        before,
        "nothing delivered twice"
    );
    drop(serve);
}

/// Issue 28, item 1: the spool directory removed while `serve` spools for a webhook that is
/// down (`rm -rf state/spool/hook`): the worker makes it again with what the open segment held,
/// the requests after it still get 200, and once the webhook is back every alert arrives
/// exactly once. Before, the items appended after the removal went to the unlinked segment:
/// 0 of them were delivered.
#[test]
fn a_spool_directory_removed_while_in_use_loses_nothing() {
    let t = Tmp::new();
    let hook = common::http::Server::start();
    hook.down();
    let port = free_port();
    let state = t.path("state");
    let cfg = config(
        &t,
        port,
        &webhook_delivery(&state, &hook.url("/in"), FAST_RETRY, "batch = 10\n"),
    );
    let serve = Serve::start(&cfg, port, &[]);
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    let recs = many_records(6);
    let chunks: Vec<&[String]> = recs.chunks(20).collect();
    let half = chunks.len() / 2;
    for (i, c) in chunks[..half].iter().enumerate() {
        let r = post_records(&client, &url, &format!("req-{i}"), c);
        assert_eq!(r.status, 200, "{}", r.json);
    }
    let spool = state.join("spool");
    assert!(
        spool.join("hook").is_dir(),
        "spooled while the webhook is down"
    );
    std::fs::remove_dir_all(&spool).unwrap();
    for (i, c) in chunks[half..].iter().enumerate() {
        let r = post_records(&client, &url, &format!("req-{}", half + i), c);
        assert_eq!(r.status, 200, "{}", r.json);
    }
    assert!(spool.join("hook").is_dir(), "the spool was made again");
    hook.up();
    let want = expected(&cfg, &t, &recs);
    wait_for_webhook(&hook, &want, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let got = hook.webhook_alert_ids();
    assert_eq!(got.len(), want.len(), "each alert once");
    drop(serve);
}

/// Issue 28, item 6: a sink whose destination refuses it (401: a revoked webhook) is reported
/// broken on /readyz (503, naming the sink) and as `trailwatch_sink_broken{sink} 1`, while its
/// items wait in the spool; once the destination takes them, ready again and every alert
/// delivered. Before, /readyz stayed 200.
#[test]
fn a_sink_its_destination_refuses_makes_readyz_not_ready() {
    let t = Tmp::new();
    let hook = common::http::Server::start();
    hook.script((0..12).map(|_| common::http::Fault::status(401, "invalid token")));
    let port = free_port();
    let mport = free_port();
    let cfg = config(
        &t,
        port,
        &webhook_delivery(
            &t.path("state"),
            &hook.url("/in"),
            FAST_RETRY,
            "batch = 10\n",
        ),
    );
    let serve = Serve::start(
        &cfg,
        port,
        &["--metrics-addr", &format!("127.0.0.1:{mport}")],
    );
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    let recs = stratus();
    let r = post_records(&client, &url, "req-1", &recs);
    assert_eq!(r.status, 200, "{}", r.json);
    let (status, body) = http_get(mport, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("sink hook: the destination refuses its requests"),
        "{body}"
    );
    let (_, metrics) = http_get(mport, "/metrics");
    assert!(
        metrics.contains("trailwatch_sink_broken{sink=\"hook\"} 1"),
        "{metrics}"
    );
    // The script runs out: the webhook takes the spooled alerts, and the sink is ready again.
    let want = expected(&cfg, &t, &recs);
    wait_for_webhook(&hook, &want, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = http_get(mport, "/readyz");
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still not ready: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(serve);
}
