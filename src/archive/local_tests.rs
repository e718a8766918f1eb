//! A local directory listed as S3 lists it: one level or everything under a prefix, an hour's
//! key prefix, what is left out, and batches split between threads answering in the order
//! asked, equal to one thread's answers.
use super::local::{in_parts, Local};
use super::plan::{Lister, Listing, Scope};
use super::walk::Window;
use super::walk_tests::{named, windows};
use std::path::Path;

fn put(root: &Path, key: &str, bytes: usize) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, vec![b'x'; bytes]).unwrap();
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn keys(l: &Listing) -> Vec<(String, u64)> {
    l.objects.iter().map(|o| (o.key.clone(), o.size)).collect()
}

/// Three accounts of 45 regions, two days each: 135 region folders, so each level of the
/// walk asks for more folders at once than one thread reads alone.
fn org(root: &Path) -> Vec<String> {
    let mut folders = Vec::new();
    for account in ["111111111111", "222222222222", "333333333333"] {
        for r in 0..45 {
            let region = format!("xx-test-{r}");
            for day in ["01", "02"] {
                let folder = format!("AWSLogs/o-x1/{account}/CloudTrail/{region}/2026/11/{day}/");
                let name = format!(
                    "{account}_CloudTrail_{region}_202611{day}T0{}05Z_a.json.gz",
                    r % 10
                );
                put(root, &format!("{folder}{name}"), 10 + r);
                folders.push(folder);
            }
        }
    }
    folders
}

#[test]
fn a_folder_is_listed_one_level_or_whole_with_sizes_and_hidden_names_left_out() {
    let t = tempfile::tempdir().unwrap();
    put(t.path(), "AWSLogs/a/2026/01/f1.json.gz", 3);
    put(t.path(), "AWSLogs/a/2026/02/f2.json.gz", 5);
    put(t.path(), "AWSLogs/a/top.txt", 7);
    put(t.path(), "AWSLogs/a/.hidden", 1);
    put(t.path(), "AWSLogs/a/.git/x", 1);
    let (store, prefix) = Local::at(&t.path().join("AWSLogs"));
    assert_eq!(prefix, "AWSLogs/");
    let one = block_on(store.list("AWSLogs/a/", true)).unwrap();
    assert_eq!(one.prefixes, ["AWSLogs/a/2026/"]);
    assert_eq!(keys(&one), [("AWSLogs/a/top.txt".to_string(), 7)]);
    let whole = block_on(store.list("AWSLogs/a/", false)).unwrap();
    assert!(whole.prefixes.is_empty());
    assert_eq!(
        keys(&whole),
        [
            ("AWSLogs/a/2026/01/f1.json.gz".to_string(), 3),
            ("AWSLogs/a/2026/02/f2.json.gz".to_string(), 5),
            ("AWSLogs/a/top.txt".to_string(), 7),
        ]
    );
}

#[test]
fn a_name_that_is_not_utf8_is_listed_not_left_out() {
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().unwrap();
    let folder = t.path().join("AWSLogs/a");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join(std::ffi::OsStr::from_bytes(b"bad\xff.json.gz")),
        b"x",
    )
    .unwrap();
    let (store, _) = Local::at(t.path());
    let got = block_on(store.list("AWSLogs/a/", true)).unwrap();
    let listed: Vec<&str> = got.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(listed, ["AWSLogs/a/bad\u{fffd}.json.gz"]);
}

#[test]
fn a_key_prefix_inside_a_folder_lists_the_names_that_start_with_it() {
    let t = tempfile::tempdir().unwrap();
    let day = "AWSLogs/o-x1/111111111111/CloudTrail/us-east-1/2026/01/31/";
    for hour in ["T22", "T23"] {
        put(
            t.path(),
            &format!("{day}111111111111_CloudTrail_us-east-1_20260131{hour}05Z_a.json.gz"),
            1,
        );
    }
    let (store, _) = Local::at(t.path());
    let hour = format!("{day}111111111111_CloudTrail_us-east-1_20260131T23");
    let got = block_on(store.list(&hour, false)).unwrap();
    assert_eq!(got.objects.len(), 1);
    assert!(got.objects[0].key.starts_with(&hour), "{:?}", got.objects);
}

#[test]
fn what_is_not_there_lists_as_nothing_and_a_folder_that_is_a_file_too() {
    let t = tempfile::tempdir().unwrap();
    put(t.path(), "AWSLogs/a/file", 1);
    let (store, _) = Local::at(t.path());
    for prefix in [
        "AWSLogs/b/",
        "AWSLogs/a/file/",
        "AWSLogs/a/nothing-starts-so",
    ] {
        let got = block_on(store.list(prefix, true)).unwrap();
        assert!(
            got.prefixes.is_empty() && got.objects.is_empty(),
            "{prefix}"
        );
    }
    let (gone, _) = Local::at(&t.path().join("no-such-directory"));
    let got = block_on(gone.list("", false)).unwrap();
    assert!(got.objects.is_empty());
}

#[test]
fn a_batch_split_between_threads_answers_in_the_order_asked_as_one_thread_does() {
    let t = tempfile::tempdir().unwrap();
    let mut folders = org(t.path());
    // A prefix with nothing under it, in the middle of the batch, keeps its place.
    folders.insert(70, "AWSLogs/o-x1/444444444444/CloudTrail/".into());
    let (mut store, _) = Local::at(t.path());
    let one: Vec<_> = block_on(store.list_all(&folders, false))
        .into_iter()
        .map(|l| keys(&l.unwrap()))
        .collect();
    assert_eq!(one.len(), folders.len());
    assert!(one[70].is_empty());
    for (folder, got) in folders.iter().zip(&one) {
        assert!(
            got.iter().all(|(k, _)| k.starts_with(folder.as_str())),
            "{folder}: {got:?}"
        );
    }
    for threads in [2, 3, 8] {
        store.threads = threads;
        let split: Vec<_> = block_on(store.list_all(&folders, false))
            .into_iter()
            .map(|l| keys(&l.unwrap()))
            .collect();
        assert_eq!(split, one, "{threads} threads");
    }
}

/// A batch split between threads, each part answering its items with the thread it ran on.
fn split(
    builder: &dyn Fn() -> std::thread::Builder,
    panics_on: Option<u32>,
) -> Vec<Result<(u32, std::thread::ThreadId), u32>> {
    let items: Vec<u32> = (0..10).collect();
    let part = |chunk: &[u32]| {
        assert!(
            panics_on.is_none_or(|p| !chunk.contains(&p)),
            "a listing bug"
        );
        chunk
            .iter()
            .map(|&i| Ok((i, std::thread::current().id())))
            .collect()
    };
    in_parts(&items, 3, builder, part, |&i| Err(i))
}

#[test]
fn a_part_whose_thread_panics_fails_its_own_items_and_the_others_are_answered_in_order() {
    let got = split(&std::thread::Builder::new, Some(5));
    // Parts of 4: 0–3, 4–7 (its thread panicked), 8–9.
    let ok: Vec<u32> = got
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|(i, _)| *i))
        .collect();
    let failed: Vec<u32> = got
        .iter()
        .filter_map(|r| r.as_ref().err().copied())
        .collect();
    assert_eq!(ok, [0, 1, 2, 3, 8, 9]);
    assert_eq!(failed, [4, 5, 6, 7]);
    assert!(
        got[4..8].iter().all(|r| r.is_err()),
        "in the order asked: {got:?}"
    );
    let me = std::thread::current().id();
    assert!(
        got.iter().flatten().all(|(_, t)| *t != me),
        "read on threads of their own"
    );
}

#[test]
fn a_part_whose_thread_cannot_start_is_answered_on_the_calling_thread() {
    // A stack larger than the address space: no thread can be started.
    let no_thread = || std::thread::Builder::new().stack_size(1 << 50);
    let got = split(&no_thread, None);
    let me = std::thread::current().id();
    let answered: Vec<u32> = got
        .iter()
        .map(|r| r.as_ref().map(|(i, _)| *i).unwrap())
        .collect();
    assert_eq!(answered, (0..10).collect::<Vec<_>>());
    assert!(got.iter().flatten().all(|(_, t)| *t == me), "{got:?}");
}

#[test]
fn a_walk_on_several_threads_gives_the_windows_of_one() {
    let t = tempfile::tempdir().unwrap();
    org(t.path());
    let (mut store, prefix) = Local::at(&t.path().join("AWSLogs"));
    assert_eq!(prefix, "AWSLogs/");
    let read = |ws: &[Window]| -> Vec<Vec<(String, u64)>> {
        ws.iter()
            .map(|w| {
                w.objects
                    .iter()
                    .map(|p| (p.object.key.clone(), p.object.size))
                    .collect()
            })
            .collect()
    };
    let walk = |store: &Local| windows(store, "AWSLogs/", &Scope::default(), named());
    let one = walk(&store);
    assert_eq!(one.len(), 2, "a window a day");
    assert_eq!(one.iter().map(|w| w.objects.len()).sum::<usize>(), 270);
    store.threads = 4;
    let four = walk(&store);
    assert_eq!(read(&four), read(&one));
    let listed = |ws: &[Window]| ws.iter().flat_map(|w| w.listed.clone()).collect::<Vec<_>>();
    assert_eq!(listed(&four), listed(&one));
}
