//! The Kinesis road without the binary or an emulator: a batch's acceptance mapped to its
//! shard's position (through [`acknowledge`] and the file [`Checkpointer`]), on an engine
//! whose in-memory sink accepts, fails or cannot be spooled to.

use std::time::Duration;

use tokio::sync::oneshot;

use super::*;
use crate::engine::tests::{break_spool, lines, with_memory, NOW};
use crate::sink::destination::memory::{Memory, Mode};
use crate::state::positions::Ack;

/// The fixture's lines as one batch of `shard`, sequence numbers 1000, 1001, …
fn batch(shard: &str, lines: &[&str], shard_end: bool) -> (Batch, oneshot::Receiver<bool>) {
    let records: Vec<(String, Vec<u8>)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("{}", 1000 + i), l.as_bytes().to_vec()))
        .collect();
    let (resume, resumed) = oneshot::channel();
    let ack = Ack {
        shard: shard.into(),
        sequence_number: records.last().map(|(s, _)| s.clone()),
        sub_sequence: None,
        shard_end,
        arrived: None,
    };
    let b = Batch {
        records,
        ack,
        millis_behind: Some(0),
        skip: None,
        resume,
        gap: None,
    };
    (b, resumed)
}

fn seq(p: &Positions, shard: &str) -> Option<String> {
    p.get(shard).and_then(|c| c.sequence_number)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_moves_its_shard_only_once_the_sink_has_its_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::new(Mode::Fail);
    let engine = with_memory(dir.path(), &mem, Duration::from_secs(30), NOW);
    let checkpointer = Checkpointer::file(Positions::default());
    let nudge = Nudge::default();
    let lines = lines();
    let (b, mut resumed) = batch("shardId-000000000001", &lines, false);
    let last = b.ack.sequence_number.clone();
    let accepted = tokio::spawn(acknowledge(&engine, b, &checkpointer, &nudge, None).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!accepted.is_finished(), "accepted while the sink fails");
    assert_eq!(seq(checkpointer.positions(), "shardId-000000000001"), None);
    assert!(resumed.try_recv().is_err(), "the reader read on too early");
    mem.set(Mode::Accept);
    accepted.await.unwrap().expect("delivered");
    assert_eq!(seq(checkpointer.positions(), "shardId-000000000001"), last);
    assert!(resumed.await.unwrap(), "the reader reads on");
    assert!(!mem.ids().is_empty());
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_alerts_are_refused_moves_nothing_and_stops_its_reader() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::new(Mode::Stall);
    let engine = with_memory(dir.path(), &mem, Duration::from_millis(100), NOW);
    // The spool cannot be written: its directory is a file.
    break_spool(dir.path());
    let checkpointer = Checkpointer::file(Positions::default());
    let nudge = Nudge::default();
    let (b, resumed) = batch("s", &lines(), true);
    let refused = acknowledge(&engine, b, &checkpointer, &nudge, None)
        .await
        .await;
    assert!(refused.is_err(), "the alerts were accepted");
    assert_eq!(checkpointer.positions().get("s"), None, "the shard moved");
    assert!(resumed.await.is_err(), "the reader was told to read on");
    // Nor can the state file cover those records.
    let mut state = StateFile::open(&dir.path().join("state.json"), "org").unwrap();
    assert!(matches!(
        checkpointer.save(&mut state, &engine),
        Err(RoadError::Lost)
    ));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_checkpointer_saves_the_acknowledged_positions_and_a_finished_shard() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::new(Mode::Accept);
    let engine = with_memory(dir.path(), &mem, Duration::from_secs(30), NOW);
    let path = dir.path().join("state.json");
    let mut state = StateFile::open(&path, "org").unwrap();
    let checkpointer = Checkpointer::file(Positions::new(state.state.shards.clone()));
    let nudge = Nudge::default();
    let lines = lines();
    let (a, _ra) = batch("a", &lines[..5], false);
    let (b, _rb) = batch("b", &lines[5..], true);
    acknowledge(&engine, a, &checkpointer, &nudge, None)
        .await
        .await
        .unwrap();
    acknowledge(&engine, b, &checkpointer, &nudge, None)
        .await
        .await
        .unwrap();
    checkpointer.save(&mut state, &engine).unwrap();
    let reopened = StateFile::open(&path, "org").unwrap();
    let shards = &reopened.state.shards;
    assert_eq!(shards["a"].sequence_number.as_deref(), Some("1004"));
    assert!(!shards["a"].finished);
    let last_b = format!("{}", 1000 + lines.len() - 5 - 1);
    assert_eq!(
        shards["b"].sequence_number.as_deref(),
        Some(last_b.as_str())
    );
    assert!(shards["b"].finished, "SHARD_END is saved");
    // What the engine saw is in the same file: a restart does not alert on it again.
    assert!(
        reopened
            .state
            .engine
            .pipeline
            .as_ref()
            .unwrap()
            .event_ids
            .len()
            >= lines.len()
    );
    engine.shutdown().await;
}
