//! Every fuzz target (`swiftgate::fuzz`) replays its seed corpus (`fuzz/corpus/TARGET`)
//! and every input that once made it fail (`fuzz/regressions/TARGET`): none may panic.
//! `scripts/fuzz` runs the targets under AFL++ and grows both.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_replays_its_corpus_and_regressions_without_failing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failed = Vec::new();
    let mut replayed = 0;
    for (name, target) in swiftgate::fuzz::TARGETS {
        let corpus = inputs(&root.join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "the fuzz target {name} has no seed corpus in fuzz/corpus/{name}"
        );
        let regressions = inputs(&root.join("regressions").join(name));
        for file in corpus.iter().chain(&regressions) {
            let data = std::fs::read(file).unwrap();
            replayed += 1;
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                failed.push(file.display().to_string());
            }
        }
        println!(
            "{name}: {} seeds, {} regressions",
            corpus.len(),
            regressions.len()
        );
    }
    println!(
        "{replayed} inputs replayed over {} targets",
        swiftgate::fuzz::TARGETS.len()
    );
    assert!(failed.is_empty(), "failed on: {failed:#?}");
}

#[test]
fn every_corpus_directory_is_a_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind)) else {
            continue;
        };
        for e in entries {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                swiftgate::fuzz::target(&name).is_some(),
                "fuzz/{kind}/{name} names no target"
            );
        }
    }
}
