//! `cargo xtask new-service` end to end, on a copy of this workspace: generate `shipping`
//! (consuming `OrderConfirmed`), build it, run its tests against the real PostgreSQL and
//! RabbitMQ, and run the deploy gate on the result; then check that a second run with the same
//! name, a taken port and `--expose` are refused and change nothing.
//!
//! The copy is the repository's files (`git ls-files`, not `target/`), with their modification
//! times, at a fixed place under the target directory, and it builds into this workspace's own
//! target directory: dependencies are compiled once and shared, and only what the generator
//! touched is rebuilt. Everything runs offline (`CARGO_NET_OFFLINE`): the new crate depends on
//! workspace dependencies only, so the lock file gains the crate and nothing else. The deploy
//! gate's installed tools (`.venv-deploy/`, `.tools/`) are the workspace's own, linked in.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

use std::{
    collections::BTreeMap,
    fs,
    hash::{DefaultHasher, Hash as _, Hasher as _},
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Instant,
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// `git ls-files` of `root` (tracked, and new files not ignored), copied into `copy` with their
/// modification times, so cargo sees unchanged sources as unchanged.
fn copy_workspace(root: &Path, copy: &Path) {
    let listed = Command::new("git")
        .current_dir(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .unwrap();
    assert!(listed.status.success(), "git ls-files failed");
    for path in listed.stdout.split(|byte| *byte == 0) {
        let path = Path::new(std::str::from_utf8(path).unwrap());
        let source = root.join(path);
        if path.as_os_str().is_empty() || !source.is_file() {
            continue; // deleted in the work tree
        }
        let target = copy.join(path);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(&source, &target).unwrap();
        let modified = fs::metadata(&source).unwrap().modified().unwrap();
        fs::File::options()
            .write(true)
            .open(&target)
            .unwrap()
            .set_modified(modified)
            .unwrap();
    }
    for tools in [".venv-deploy", ".tools"] {
        if root.join(tools).is_dir() {
            std::os::unix::fs::symlink(root.join(tools), copy.join(tools)).unwrap();
        }
    }
}

/// Runs `program args` in `dir`, offline, building into `target`; prints how long it took.
fn run(dir: &Path, target: &Path, program: &str, args: &[&str]) -> Output {
    let started = Instant::now();
    // cargo-nextest as `cargo xtask test` installs it, when it is not on PATH.
    let tools = workspace().join(".tools/cargo/bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path =
        std::env::join_paths(std::iter::once(tools).chain(std::env::split_paths(&path))).unwrap();
    let output = Command::new(program)
        .current_dir(dir)
        .env("PATH", path)
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .unwrap();
    eprintln!(
        "new-service proof: `{program} {}` took {:.0?} ({})",
        args.join(" "),
        started.elapsed(),
        output.status
    );
    output
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Ferroshop",
            "-c",
            "user.email=dev@ferroshop.test",
        ])
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// A hash of every file of the copy outside `.git` and the build outputs: path and contents.
fn tree_hash(dir: &Path) -> u64 {
    fn walk(dir: &Path, base: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if [".git", "target", ".venv-deploy", ".tools", ".terraform"].contains(&name.as_str())
                || path.is_symlink()
            {
                continue;
            }
            if path.is_dir() {
                walk(&path, base, files);
            } else {
                files.insert(
                    path.strip_prefix(base).unwrap().to_path_buf(),
                    fs::read(&path).unwrap(),
                );
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    let mut hasher = DefaultHasher::new();
    files.hash(&mut hasher);
    hasher.finish()
}

/// Builds this workspace's binaries again when dropped: `cargo xtask` run in the copy puts the
/// copy's `xtask` into the shared target directory, where this workspace's tests (the bench
/// smoke test) expect their own.
struct RestoreBinaries<'a> {
    root: &'a Path,
    target: &'a Path,
}

impl Drop for RestoreBinaries<'_> {
    fn drop(&mut self) {
        let restored = run(
            self.root,
            self.target,
            &cargo(),
            &["build", "--package", "xtask", "--bins"],
        );
        if !restored.status.success() {
            eprintln!(
                "new-service proof: could not rebuild xtask:\n{}",
                text(&restored)
            );
        }
    }
}

#[test]
fn a_generated_service_builds_passes_its_tests_and_the_deploy_gate_and_is_not_generated_twice() {
    let started = Instant::now();
    let root = workspace();
    let target = target_dir(&root);
    let copy = target.join("new-service-proof").join("workspace");
    if copy.exists() {
        fs::remove_dir_all(&copy).unwrap();
    }
    fs::create_dir_all(&copy).unwrap();
    copy_workspace(&root, &copy);
    git(&copy, &["init", "--quiet"]);
    git(&copy, &["add", "--all"]);
    git(&copy, &["commit", "--quiet", "--message", "the workspace"]);

    let cargo = cargo();
    let _restore = RestoreBinaries {
        root: &root,
        target: &target,
    };
    let generated = run(
        &copy,
        &target,
        &cargo,
        &[
            "xtask",
            "new-service",
            "shipping",
            "--consumes",
            "OrderConfirmed",
            "--expose",
        ],
    );
    assert!(generated.status.success(), "{}", text(&generated));
    for file in [
        "services/shipping/src/config.rs",
        "services/shipping/src/domain/mod.rs",
        "services/shipping/src/store.rs",
        "services/shipping/src/grpc.rs",
        "services/shipping/src/events.rs",
        "services/shipping/tests/support/mod.rs",
        "services/shipping/tests/records.rs",
        "services/shipping/tests/process.rs",
        "proto/shop/shipping/v1/shipping.proto",
        "k8s/base/shipping/networkpolicy.yaml",
        "k8s/base/data/postgres/shipping-db.yaml",
        "services/gateway/src/api/shipping.rs",
    ] {
        assert!(copy.join(file).is_file(), "{file} was not generated");
    }
    let topology = fs::read_to_string(copy.join("libs/messaging/src/topology.rs")).unwrap();
    assert!(
        topology.contains("pub const SHIPPING_ORDERS: Queue"),
        "{topology}"
    );

    // Clippy as CI runs it, on the new crate and on the gateway it was exposed through.
    let clippy = run(
        &copy,
        &target,
        &cargo,
        &[
            "clippy",
            "--package",
            "shipping",
            "--package",
            "gateway",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    );
    assert!(clippy.status.success(), "{}", text(&clippy));
    for tests in [
        &["nextest", "run", "--package", "shipping", "--no-fail-fast"][..],
        // The gateway's unit tests, its OpenAPI document with the new route among them. Only
        // the library: an integration test would build the gateway binary, and the shared
        // target directory's binary is the one this workspace's end-to-end tests run.
        &[
            "nextest",
            "run",
            "--package",
            "gateway",
            "--lib",
            "--no-fail-fast",
        ][..],
        // The catalog and topology the generator added to, and the layering every service keeps.
        &["nextest", "run", "--package", "messaging", "--lib"][..],
        // The declarations it added to: names and ports unique, callers and upstreams agreeing,
        // docs/configuration.md current.
        &["nextest", "run", "--package", "declarations"][..],
        &[
            "nextest",
            "run",
            "--package",
            "xtask",
            "--bin",
            "xtask",
            "layering",
        ][..],
    ] {
        let tested = run(&copy, &target, &cargo, tests);
        assert!(tested.status.success(), "{}", text(&tested));
        let summary: Vec<String> = text(&tested)
            .lines()
            .filter(|line| line.contains("Summary"))
            .map(str::to_owned)
            .collect();
        eprintln!("{}", summary.join("\n"));
    }
    // The new consumer queue widens every broker user's grant.
    let permissions = run(&copy, &target, &cargo, &["xtask", "grants"]);
    assert!(permissions.status.success(), "{}", text(&permissions));
    let gate = run(&copy, &target, &cargo, &["xtask", "deploy-check"]);
    assert!(gate.status.success(), "{}", text(&gate));

    // What was generated is committed; from here on nothing may change.
    git(&copy, &["add", "--all"]);
    git(&copy, &["commit", "--quiet", "--message", "shipping"]);
    let before = tree_hash(&copy);
    for (args, expected) in [
        (
            &[
                "xtask",
                "new-service",
                "shipping",
                "--consumes",
                "OrderConfirmed",
            ][..],
            "the name \"shipping\" is taken",
        ),
        (
            &["xtask", "new-service", "courier", "--port", "50055"][..],
            "--port 50055 is taken",
        ),
        (
            &["xtask", "new-service", "Courier"][..],
            "not a valid service name",
        ),
        (
            &[
                "xtask",
                "new-service",
                "courier",
                "--consumes",
                "OrderShipped",
            ][..],
            "--consumes OrderShipped: no such event",
        ),
        (
            &["xtask", "new-service", "gateway", "--expose"][..],
            "the name \"gateway\" is taken",
        ),
    ] {
        let refused = run(&copy, &target, &cargo, args);
        let output = text(&refused);
        assert!(
            !refused.status.success(),
            "{args:?} must be refused:\n{output}"
        );
        assert!(output.contains(expected), "{args:?}:\n{output}");
        assert_eq!(tree_hash(&copy), before, "{args:?} changed the tree");
    }
    fs::write(copy.join("scratch.txt"), "uncommitted").unwrap();
    let dirty = run(&copy, &target, &cargo, &["xtask", "new-service", "courier"]);
    assert!(!dirty.status.success());
    assert!(
        text(&dirty).contains("uncommitted changes"),
        "{}",
        text(&dirty)
    );
    fs::remove_file(copy.join("scratch.txt")).unwrap();
    assert_eq!(tree_hash(&copy), before);

    eprintln!(
        "new-service proof: everything took {:.0?}",
        started.elapsed()
    );
    fs::remove_dir_all(&copy).unwrap();
}
