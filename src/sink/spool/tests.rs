#![allow(clippy::disallowed_methods)] // tests read back the files the code under test wrote
use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn recs(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    range.map(|i| format!("alert-{i}").into_bytes()).collect()
}

fn seg(d: &Path, n: u64) -> PathBuf {
    d.join(seg_name(n))
}

#[test]
fn appended_records_survive_reopen_in_order_and_commit_moves_past_them() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Spool::open(d.path(), 4096).unwrap();
    assert!(s.is_empty());
    s.append(&recs(0..3), 1000).unwrap();
    s.append(&recs(3..5), 2000).unwrap();
    drop(s);
    let mut s = Spool::open(d.path(), 4096).unwrap();
    assert_eq!(s.len(), 5);
    assert_eq!(s.oldest_millis(), Some(1000));
    assert_eq!(s.peek(2).unwrap(), recs(0..2));
    s.commit(2).unwrap();
    drop(s);
    let mut s = Spool::open(d.path(), 4096).unwrap();
    assert_eq!(s.peek(10).unwrap(), recs(2..5));
    s.commit(3).unwrap();
    assert!(s.is_empty());
    s.append(&recs(5..6), 3000).unwrap();
    drop(s);
    let s = Spool::open(d.path(), 4096).unwrap();
    assert_eq!(s.peek(10).unwrap(), recs(5..6));
    assert!(s.corrupt.is_empty());
    assert!(s.cursor_problem.is_none());
}

#[test]
fn segments_roll_at_their_size_inside_one_batch_and_delivered_ones_are_deleted() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Spool::open(d.path(), 4096).unwrap();
    let big: Vec<Vec<u8>> = (0..40).map(|i| vec![b'a' + (i % 26) as u8; 500]).collect();
    // One batch of 20 KB: it must not land in one segment.
    s.append(&big, 1).unwrap();
    let mut sizes: Vec<u64> = s
        .segments()
        .unwrap()
        .iter()
        .map(|n| fs::metadata(seg(d.path(), *n)).unwrap().len())
        .collect();
    sizes.sort_unstable();
    assert!(sizes.len() >= 5, "{sizes:?}");
    assert!(sizes.iter().all(|&b| b <= 4096), "{sizes:?}");
    let segs = sizes.len();
    s.commit(30).unwrap();
    assert!(s.segments().unwrap().len() < segs);
    drop(s);
    let s = Spool::open(d.path(), 4096).unwrap();
    assert_eq!(s.peek(100).unwrap(), big[30..].to_vec());
}

#[test]
fn one_flipped_byte_costs_that_record_only_and_is_quarantined() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    s.append(&recs(0..20), 1).unwrap();
    drop(s);
    let mut bytes = fs::read(seg(d.path(), 1)).unwrap();
    let size = frame::HEADER + "alert-0".len();
    let tenth = 9 * size;
    bytes[tenth + frame::HEADER + 2] ^= 0xff;
    fs::write(seg(d.path(), 1), &bytes).unwrap();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    let mut want = recs(0..9);
    want.extend(recs(10..20));
    assert_eq!(s.peek(100).unwrap(), want);
    assert_eq!(s.corrupt.len(), 1);
    let c = &s.corrupt[0];
    assert_eq!(
        (c.offset, c.bytes, c.reason.as_str(), c.new),
        (tenth as u64, size as u64, "checksum mismatch", true)
    );
    assert_eq!(
        fs::read(&c.quarantine).unwrap(),
        &bytes[tenth..tenth + size]
    );
    // Not cut away: the segment keeps its bytes.
    assert_eq!(
        fs::metadata(seg(d.path(), 1)).unwrap().len(),
        bytes.len() as u64
    );
    // Appends still read back, and a second open does not report the same damage as new.
    s.append(&recs(30..31), 2).unwrap();
    drop(s);
    let s = Spool::open(d.path(), 1 << 20).unwrap();
    want.extend(recs(30..31));
    assert_eq!(s.peek(100).unwrap(), want);
    assert_eq!(s.corrupt.len(), 1);
    assert!(!s.corrupt[0].new);
}

#[test]
fn a_torn_tail_seals_the_head_segment_and_appends_go_on_in_a_new_one() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    s.append(&recs(0..4), 1).unwrap();
    drop(s);
    let path = seg(d.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&frame::MAGIC);
    bytes.extend_from_slice(&[7, 0, 0]);
    fs::write(&path, &bytes).unwrap();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!(s.corrupt.len(), 1);
    assert_eq!(s.corrupt[0].reason, "truncated record header");
    assert_eq!(s.corrupt[0].bytes, 7);
    s.append(&recs(9..10), 2).unwrap();
    assert!(seg(d.path(), 2).exists(), "appends went to a new segment");
    drop(s);
    let s = Spool::open(d.path(), 1 << 20).unwrap();
    let mut want = recs(0..4);
    want.extend(recs(9..10));
    assert_eq!(s.peek(10).unwrap(), want);
}

#[test]
fn a_garbled_cursor_is_reported_and_reading_starts_at_the_oldest_segment() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    s.append(&recs(0..5), 1).unwrap();
    s.commit(2).unwrap();
    drop(s);
    let cursor = d.path().join("cursor");
    let text = fs::read_to_string(&cursor).unwrap();
    assert!(text.contains("\"check\""), "{text}");
    // A plausible cursor whose offset was changed: valid JSON, wrong checksum.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let moved = serde_json::json!({"segment": v["segment"], "offset": 3, "check": v["check"]});
    fs::write(&cursor, moved.to_string()).unwrap();
    let s = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!(s.cursor_problem.as_deref(), Some("checksum mismatch"));
    assert_eq!(s.peek(10).unwrap(), recs(0..5));
    fs::write(&cursor, b"{broken").unwrap();
    let s = Spool::open(d.path(), 1 << 20).unwrap();
    assert!(s
        .cursor_problem
        .as_deref()
        .unwrap()
        .starts_with("unreadable"));
}

#[test]
fn a_cursor_from_before_the_checksum_is_still_trusted() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    s.append(&recs(0..3), 1).unwrap();
    drop(s);
    let off = frame::HEADER + "alert-0".len();
    fs::write(
        d.path().join("cursor"),
        format!("{{\"segment\":1,\"offset\":{off}}}"),
    )
    .unwrap();
    let s = Spool::open(d.path(), 1 << 20).unwrap();
    assert!(s.cursor_problem.is_none());
    assert_eq!(s.peek(10).unwrap(), recs(1..3));
}

#[test]
fn a_version_0_segment_is_read_and_never_appended_to() {
    let d = tempfile::tempdir().unwrap();
    let mut old = Vec::new();
    for p in recs(0..3) {
        let ts = 5u64.to_le_bytes();
        let mut covered = ts.to_vec();
        covered.extend_from_slice(&p);
        old.extend_from_slice(&(p.len() as u32).to_le_bytes());
        old.extend_from_slice(&crc32(&covered).to_le_bytes());
        old.extend_from_slice(&covered);
    }
    fs::write(seg(d.path(), 1), &old).unwrap();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!(s.peek(10).unwrap(), recs(0..3));
    assert_eq!(s.oldest_millis(), Some(5));
    s.append(&recs(3..4), 6).unwrap();
    assert_eq!(fs::read(seg(d.path(), 1)).unwrap(), old);
    s.commit(1).unwrap();
    drop(s);
    let s = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!(s.peek(10).unwrap(), recs(1..4));
    assert!(s.corrupt.is_empty());
}

#[test]
fn a_full_disk_leaves_the_segment_as_it_was_and_appends_after_it_read_back() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Spool::open(d.path(), 4096).unwrap();
    s.append(&recs(0..3), 1).unwrap();
    let before = fs::read(seg(d.path(), 1)).unwrap();
    // Room for one record and a half of the next: the write fails part way.
    s.fail_after = Some((frame::HEADER + 8) as u64 * 3 / 2);
    let err = s.append(&recs(10..14), 2).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert_eq!(
        fs::read(seg(d.path(), 1)).unwrap(),
        before,
        "torn bytes are cut"
    );
    assert_eq!(s.len(), 3, "nothing of the failed batch is counted");
    // A batch that fails across a segment roll removes the segment it created.
    let wide: Vec<Vec<u8>> = (0..12).map(|i| vec![b'x' + (i % 2) as u8; 600]).collect();
    s.fail_after = Some(5000);
    assert!(s.append(&wide, 3).is_err());
    assert_eq!(s.segments().unwrap(), vec![1]);
    assert_eq!(fs::read(seg(d.path(), 1)).unwrap(), before);
    // Space is back.
    s.fail_after = None;
    s.append(&recs(20..22), 4).unwrap();
    s.append(&wide, 5).unwrap();
    drop(s);
    let s = Spool::open(d.path(), 4096).unwrap();
    assert!(s.corrupt.is_empty(), "{:?}", s.corrupt);
    let mut want = recs(0..3);
    want.extend(recs(20..22));
    want.extend(wide);
    assert_eq!(s.peek(100).unwrap(), want);
}

#[test]
fn garbage_never_panics() {
    let d = tempfile::tempdir().unwrap();
    fs::write(seg(d.path(), 1), b"\xff\xff\xff\xffnot a spool, not at all").unwrap();
    fs::write(d.path().join("cursor"), b"{broken").unwrap();
    let mut s = Spool::open(d.path(), 4096).unwrap();
    assert!(s.is_empty());
    assert_eq!(s.corrupt[0].reason, "no record marker");
    s.append(&recs(0..1), 1).unwrap();
    assert_eq!(s.peek(1).unwrap(), recs(0..1));
    assert_eq!(s.purge().unwrap(), 1);
    assert!(s.is_empty());
}

/// Where each record's bytes lie: (segment, start, end, payload).
fn layout(dir: &Path) -> Vec<(u64, u64, u64, Vec<u8>)> {
    let s = Spool::inspect(dir).unwrap();
    let payloads = s.peek(usize::MAX).unwrap();
    s.entries
        .iter()
        .zip(payloads)
        .map(|(e, p)| (e.segment, e.frame.offset, e.frame.end(), p))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Flips and truncations at random offsets of segments and of the cursor: every record
    /// the damage does not touch is read, nothing is invented, and damage to records that
    /// were still to deliver is reported.
    #[test]
    fn damage_costs_at_most_the_damaged_records_and_is_reported(
        sizes in prop::collection::vec(1usize..400, 20..60),
        delivered in 0usize..20,
        hits in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 1..4),
        cursor_hit in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let d = tempfile::tempdir().unwrap();
        let all: Vec<Vec<u8>> = sizes.iter().enumerate()
            .map(|(i, n)| format!("{i:04}:{}", "z".repeat(*n)).into_bytes()).collect();
        let mut s = Spool::open(d.path(), 4096).unwrap();
        for chunk in all.chunks(7) {
            s.append(chunk, 9).unwrap();
        }
        drop(s);
        let every = layout(d.path());
        let mut s = Spool::open(d.path(), 4096).unwrap();
        s.commit(delivered).unwrap();
        drop(s);
        let before = layout(d.path());
        // The records still to deliver, located before the damage.
        let mut segs: Vec<u64> = before.iter().map(|r| r.0).collect();
        segs.dedup();
        let mut damaged: Vec<(u64, u64, u64)> = Vec::new(); // segment, from, to (exclusive)
        for (which, at, mask, truncate) in hits {
            let n = segs[which.index(segs.len())];
            let path = seg(d.path(), n);
            let mut bytes = fs::read(&path).unwrap();
            if bytes.is_empty() { continue; }
            let off = at.index(bytes.len());
            if truncate {
                damaged.push((n, off as u64, u64::MAX));
                bytes.truncate(off);
            } else {
                damaged.push((n, off as u64, off as u64 + 1));
                bytes[off] ^= mask | 1;
            }
            fs::write(&path, &bytes).unwrap();
        }
        let cursor_damaged = if let Some((at, mask)) = cursor_hit {
            let path = d.path().join("cursor");
            if let Ok(mut c) = fs::read(&path) {
                let i = at.index(c.len());
                c[i] ^= mask | 1;
                fs::write(&path, &c).unwrap();
                true
            } else { false }
        } else { false };
        let s = Spool::open(d.path(), 4096).unwrap();
        let got: Vec<Vec<u8>> = s.peek(usize::MAX).unwrap();
        let got_set: BTreeSet<&Vec<u8>> = got.iter().collect();
        let touched = |r: &(u64, u64, u64, Vec<u8>)| {
            damaged.iter().any(|&(n, a, b)| n == r.0 && a < r.2 && b > r.1)
        };
        for r in &before {
            if !touched(r) {
                prop_assert!(got_set.contains(&r.3), "intact record {:?} lost", String::from_utf8_lossy(&r.3[..6]));
            }
        }
        for g in &got {
            prop_assert!(all.contains(g), "a record was invented");
        }
        // A cut exactly between two records leaves nothing to see (a segment does not record
        // its own length): only damage that leaves bytes behind, or a cut before the cursor,
        // is detectable, and then it must be reported.
        let clean_cut = |&(n, a, b): &(u64, u64, u64)| {
            b == u64::MAX && every.iter().any(|r| r.0 == n && r.1 == a)
        };
        if before.iter().any(touched) && !damaged.iter().any(clean_cut) {
            prop_assert!(!s.corrupt.is_empty(), "damage unreported");
        }
        if cursor_damaged {
            prop_assert!(s.cursor_problem.is_some(), "a damaged cursor was trusted");
        }
        // Appending after the damage still reads back.
        drop(s);
        let mut s = Spool::open(d.path(), 4096).unwrap();
        s.append(&[b"after".to_vec()], 10).unwrap();
        drop(s);
        let s = Spool::open(d.path(), 4096).unwrap();
        prop_assert_eq!(s.peek(usize::MAX).unwrap().last().cloned(), Some(b"after".to_vec()));
    }
}

/// Issue 28, item 1: the spool directory removed under a running worker (an operator's
/// `rm -rf state/spool/hook`, a tmp reaper): `ensure_linked` makes it again, reads the head
/// segment's records back through the open descriptor into a new segment, and a reopen finds
/// them all, in order. Before, appends went to the unlinked file and were lost.
#[test]
fn a_removed_spool_directory_is_made_again_with_the_records_it_held() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("spool/hook");
    let mut s = Spool::open(&d, 1 << 20).unwrap();
    s.append(&recs(0..3), 1000).unwrap();
    assert_eq!(s.ensure_linked().unwrap(), None, "nothing moved yet");
    std::fs::remove_dir_all(root.path().join("spool")).unwrap();
    let r = s.ensure_linked().unwrap();
    assert_eq!(
        r,
        Some(Relinked {
            recovered: 3,
            lost: 0
        })
    );
    s.append(&recs(3..5), 2000).unwrap();
    assert_eq!(s.peek(10).unwrap(), recs(0..5));
    assert_eq!(s.oldest_millis(), Some(1000), "the records keep their time");
    drop(s);
    let mut s = Spool::open(&d, 1 << 20).unwrap();
    assert_eq!(s.peek(10).unwrap(), recs(0..5));
    s.commit(2).unwrap();
    // Only the segments removed (not the directory), with no segment open for appends:
    // what was in them cannot be read back, and is counted lost, not retried for ever.
    drop(s);
    let mut s = Spool::open(&d, 1 << 20).unwrap();
    for e in std::fs::read_dir(&d).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "seg") {
            std::fs::remove_file(p).unwrap();
        }
    }
    assert_eq!(
        s.ensure_linked().unwrap(),
        Some(Relinked {
            recovered: 0,
            lost: 3
        })
    );
    assert!(s.is_empty());
    s.append(&recs(9..10), 3000).unwrap();
    drop(s);
    let s = Spool::open(&d, 1 << 20).unwrap();
    assert_eq!(s.peek(10).unwrap(), recs(9..10));
}
