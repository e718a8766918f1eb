//! One object of the plan, read on a worker: a log file of the archive decoded whole (one
//! document), anything else as `replay` reads it; or, for benchmarks, only gunzipped.

use std::fs::File;
use std::io;

use super::sources::{Fetched, From, Planned};
use crate::backtest::report::Failed;
use crate::decode::Position;
use crate::engine::parallel::{Judged, Keep, Recorder};
use crate::pipeline::Judge;
use crate::source::replay::Reader;

/// An object of the plan, with its bytes when the fetch stage read them (S3).
pub(super) struct Unit {
    pub planned: Planned,
    pub fetched: Option<Fetched>,
}

/// What a worker hands over from one object.
pub(super) enum Out {
    Chunk(Judged),
    Done { stamp: Option<i64>, bytes: u64 },
    Failed(Failed),
}

/// An object's bytes: whole (a log file), or a stream for `replay`'s reader.
enum Body {
    Whole(Vec<u8>),
    Stream(Box<dyn io::Read + Send>),
}

/// Opens a unit: a log file of the archive under `max_whole` bytes whole, else a stream.
fn open(u: Unit, max_whole: u64) -> Result<(String, Option<i64>, Body), Out> {
    let Unit { planned, fetched } = u;
    let (name, stamp) = (planned.name, planned.stamp);
    let failed = |error: String| {
        Out::Failed(Failed {
            key: name.clone(),
            error,
        })
    };
    let body = match (planned.from, fetched) {
        (From::S3(..), Some(Fetched { bytes: Ok(b), .. })) => Body::Whole(b),
        (From::S3(..), Some(Fetched { bytes: Err(e), .. })) => return Err(failed(e)),
        (From::S3(..), None) => return Err(failed("the fetch stage stopped".into())),
        (From::File(p), _) if stamp.is_some() && planned.size <= max_whole => {
            // A log file of the archive, read whole only under max_whole (checked just above).
            #[allow(clippy::disallowed_methods)]
            match std::fs::read(&p) {
                Ok(b) => Body::Whole(b),
                Err(e) => return Err(failed(e.to_string())),
            }
        }
        (From::File(p), _) => match File::open(&p) {
            Ok(f) => Body::Stream(Box::new(f)),
            Err(e) => return Err(failed(e.to_string())),
        },
        (From::Stdin, _) => Body::Stream(Box::new(io::stdin())),
    };
    Ok((name, stamp, body))
}

fn done(name: String, stamp: Option<i64>, read: Result<u64, String>) -> Out {
    match read {
        Ok(bytes) => Out::Done { stamp, bytes },
        Err(error) => Out::Failed(Failed { key: name, error }),
    }
}

/// How a worker judges: by these judges (the config's, the baseline's), keeping the events
/// in scope, at this wall time.
pub(super) struct Judging<'j> {
    pub judges: &'j [Judge],
    pub keep: Keep<'j>,
    pub origins: bool,
    pub wall: i64,
    pub chunk: usize,
}

/// Decodes and judges one object, handing its events over in chunks, then how it ended.
pub(super) fn judge(
    u: Unit,
    max_whole: u64,
    reader: &Reader,
    how: &Judging<'_>,
    emit: &mut dyn FnMut(Out),
) {
    let (name, stamp, body) = match open(u, max_whole) {
        Ok(o) => o,
        Err(out) => return emit(out),
    };
    let mut chunk = |j| emit(Out::Chunk(j));
    let mut rec = Recorder::new(how.judges, how.wall)
        .with_origins(how.origins)
        .keeping(how.keep)
        .on_chunk(how.chunk, &mut chunk);
    let read = match body {
        Body::Whole(b) => {
            reader
                .decoder
                .decode(&b, &mut Position::new(name.as_str()), &mut rec);
            Ok(b.len() as u64)
        }
        Body::Stream(mut r) => {
            let mut counted = Counted {
                inner: &mut *r,
                n: 0,
            };
            reader
                .read(&name, &mut counted, &mut rec)
                .map(|_| counted.n)
                .map_err(|e| e.to_string())
        }
    };
    let rest = rec.finish();
    chunk(rest);
    emit(done(name, stamp, read))
}

/// Benchmarks: only gunzips the object (the floor decode and the rules are measured against).
pub(super) fn gunzip_only(u: Unit, max_whole: u64, reader: &Reader) -> Out {
    let cap = reader.decoder.limits.max_decompressed_bytes;
    let (name, stamp, body) = match open(u, max_whole) {
        Ok(o) => o,
        Err(out) => return out,
    };
    let read = match body {
        Body::Whole(b) => crate::decode::gzip::gunzip(&b, cap)
            .map(|_| b.len() as u64)
            .map_err(|e| e.to_string()),
        Body::Stream(mut r) => {
            let mut counted = Counted {
                inner: &mut *r,
                n: 0,
            };
            let copied = {
                let mut gz = crate::decode::gzip::reader(io::BufReader::new(&mut counted), cap);
                io::copy(&mut gz, &mut io::sink())
            };
            copied.map(|_| counted.n).map_err(|e| e.to_string())
        }
    };
    done(name, stamp, read)
}

/// Counts the bytes read through it (the compressed size, for progress and the report).
struct Counted<'r> {
    inner: &'r mut (dyn io::Read + Send),
    n: u64,
}

impl io::Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}
