//! Replays every saved fuzz input through the fuzz target's own entry point (`tests/fuzz/targets.rs`),
//! so that each crash the fuzzers found stays fixed, and every seed of the fuzz corpus keeps
//! passing, in the normal `cargo test`.
//!
//! - `tests/fuzz/regressions/<target>/<name>`: inputs that once crashed `<target>`; each must now
//!   pass. A file named `open-<name>` is a crash that is known and not fixed yet: it must still
//!   fail (so the suite stays green while the bug is open, and turns red when the fix lands, to
//!   have the file renamed to drop the `open-` prefix).
//! - `tests/fuzz/corpus/<target>/<name>`: the seed corpus; each must pass.

#[path = "fuzz/targets.rs"]
mod targets;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory").path())
        .filter(|p| p.is_file())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    out.sort();
    out
}

fn passes(entry: fn(&[u8]), data: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| entry(data))).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

#[test]
fn every_target_has_a_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    for kind in ["corpus", "regressions"] {
        for entry in fs::read_dir(root.join(kind)).expect("folder exists") {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                targets::TARGETS.iter().any(|(t, _)| *t == name),
                "tests/fuzz/{kind}/{name} names no target of tests/fuzz/targets.rs"
            );
        }
    }
}

#[test]
fn saved_crashes_replay() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (target, entry) in targets::TARGETS {
        for path in files("regressions", target) {
            count += 1;
            let data = fs::read(&path).expect("readable");
            let open = path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("open-");
            match (passes(*entry, &data), open) {
                (Ok(()), false) | (Err(_), true) => {}
                (Err(msg), false) => failures.push(format!("{}: {msg}", path.display())),
                (Ok(()), true) => failures.push(format!(
                    "{}: passes now: the bug is fixed, rename the file without `open-`",
                    path.display()
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} saved inputs:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_seeds_replay() {
    let mut count = 0;
    for (target, entry) in targets::TARGETS {
        for path in files("corpus", target) {
            count += 1;
            let data = fs::read(&path).expect("readable");
            if let Err(msg) = passes(*entry, &data) {
                panic!("{}: {msg}", path.display());
            }
        }
    }
    assert!(count > 0, "no seed corpus found");
}
