//! `trailwatch health [ADDR]`: GET /healthz on the metrics listener; exit 0 when it answers
//! 200. For container health checks in an image with nothing but this binary.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The `--metrics-addr` of the process to check.
    #[arg(default_value = "127.0.0.1:9090")]
    addr: SocketAddr,
    /// Check /readyz instead (the source works).
    #[arg(long)]
    ready: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = if args.ready { "/readyz" } else { "/healthz" };
    let ok = (|| -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&args.addr, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text.starts_with("HTTP/1.1 200"))
    })()
    .unwrap_or(false);
    if !ok {
        eprintln!("trailwatch health: {} {path}: not healthy", args.addr);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
