//! The dependency graph: nothing unused, nothing from an unknown place or under a license we
//! have not accepted.
//!
//! * **cargo-machete `--with-metadata`**: a dependency no code of its crate names is dead weight
//!   (build time, attack surface, licenses to honour). `--with-metadata` reads the real crate
//!   names from `cargo metadata` and checks dev-dependencies too, which the plain mode skips. A
//!   dependency that is used only where machete cannot see (generated code) is listed under
//!   `[package.metadata.cargo-machete] ignored` in its `Cargo.toml`, with the reason beside it.
//! * **cargo-deny `check licenses bans sources`** with `deny.toml`: every crate's license is on
//!   the allow list, the bans hold, and every crate comes from crates.io. (`advisories` is left
//!   out: it needs the advisory database from the network, and the gate runs offline.)
//!
//! Both tools come from [`super::pinned_tools`]. Neither changes `Cargo.lock`: machete's
//! `cargo metadata` is checked for it, cargo-deny runs `--locked`.

use std::{fs, path::Path, process::Command};

use anyhow::Context as _;

use super::{
    Outcome,
    tools::{capture, combined},
};

/// `cargo machete --with-metadata` over the workspace at `root`.
pub fn machete(machete: &Path, root: &Path) -> anyhow::Result<Outcome> {
    let lock = root.join("Cargo.lock");
    let before = fs::read(&lock).ok();
    let output = capture(
        Command::new(machete)
            .current_dir(root)
            .args(["--with-metadata", "--skip-target-dir"]),
    )?;
    if let Some(before) = before
        && fs::read(&lock).ok().as_ref() != Some(&before)
    {
        fs::write(&lock, &before).context("cannot restore Cargo.lock")?;
        return Ok(Outcome::Fail(
            "Cargo.lock was out of date (cargo metadata rewrote it; restored): run `cargo \
             update --workspace` and commit the lock file"
                .to_owned(),
        ));
    }
    // Exit code 1: unused dependencies found; 2: machete itself failed.
    Ok(if output.status.success() {
        Outcome::Pass(String::new())
    } else {
        Outcome::Fail(combined(&output))
    })
}

/// `cargo deny check licenses bans sources` for the workspace at `root` with `config`.
pub fn deny(deny: &Path, root: &Path, config: &Path) -> anyhow::Result<Outcome> {
    let output = capture(
        Command::new(deny)
            .current_dir(root)
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .arg("--config")
            .arg(config)
            .args([
                "--locked",
                "--color",
                "never",
                "check",
                "--hide-inclusion-graph",
                "licenses",
                "bans",
                "sources",
            ]),
    )?;
    let text = combined(&output);
    Ok(if output.status.success() {
        // cargo-deny prints one "<check> ok" line per check, and warnings before them.
        let warnings = text
            .lines()
            .filter(|line| line.starts_with("warning["))
            .count();
        Outcome::Pass(format!(
            "{warnings} warnings (duplicate versions, see deny.toml)"
        ))
    } else {
        Outcome::Fail(text)
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{
        super::{pinned_tools, workspace_root},
        *,
    };

    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "ferroshop-dependencies-{name}-{}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn file(&self, path: &str, text: &str) -> &Self {
            let path = self.0.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
            self
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn failure(outcome: Outcome) -> String {
        match outcome {
            Outcome::Fail(text) => text,
            Outcome::Pass(text) | Outcome::Skip(text) => panic!("expected a failure: {text}"),
        }
    }

    /// A workspace whose `app` names its dependency `helper` nowhere, nor `tool` its
    /// dev-dependency `helper`; `tool`'s `generated` is used only by code machete cannot see,
    /// and its manifest says so.
    #[test]
    fn machete_reports_unused_dependencies_and_dev_dependencies_but_not_ignored_ones() {
        let machete_bin = pinned_tools::CARGO_MACHETE
            .ensure(&workspace_root())
            .unwrap();
        let scratch = Scratch::new("machete");
        let package = |name: &str, extra: &str| {
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
                 publish = false\n{extra}"
            )
        };
        let tool_manifest = concat!(
            "\n[dependencies]\ngenerated = { path = \"../generated\" }\n",
            "\n[dev-dependencies]\nhelper = { path = \"../helper\" }\n",
            "\n[package.metadata.cargo-machete]\n",
            "# used by the code build.rs generates\n",
            "ignored = [\"generated\"]\n",
        );
        scratch
            .file(
                "Cargo.toml",
                concat!(
                    "[workspace]\nresolver = \"3\"\n",
                    "members = [\"app\", \"tool\", \"helper\", \"generated\"]\n",
                ),
            )
            .file("helper/Cargo.toml", &package("helper", ""))
            .file("helper/src/lib.rs", "pub fn help() {}\n")
            .file("generated/Cargo.toml", &package("generated", ""))
            .file("generated/src/lib.rs", "pub fn generated() {}\n")
            .file(
                "app/Cargo.toml",
                &package(
                    "app",
                    "\n[dependencies]\nhelper = { path = \"../helper\" }\n",
                ),
            )
            .file("app/src/main.rs", "fn main() {}\n")
            .file("tool/Cargo.toml", &package("tool", tool_manifest))
            .file("tool/src/lib.rs", "pub fn tool() {}\n");
        let report = failure(machete(&machete_bin, &scratch.0).unwrap());
        assert!(
            report.contains("app -- ./app/Cargo.toml:\n\thelper"),
            "{report}"
        );
        assert!(
            report.contains("tool -- ./tool/Cargo.toml:\n\thelper"),
            "{report}"
        );
        assert!(!report.contains("generated"), "{report}");

        scratch.file("app/src/main.rs", "fn main() {\n    helper::help();\n}\n");
        scratch.file(
            "tool/src/lib.rs",
            "pub fn tool() {}\n\n#[test]\nfn helps() {\n    helper::help();\n}\n",
        );
        let outcome = machete(&machete_bin, &scratch.0).unwrap();
        assert!(
            matches!(outcome, Outcome::Pass(_)),
            "every dependency is used now"
        );
    }

    /// The repository's own deny.toml with MIT taken off the allow list: the graph is full of
    /// MIT crates, so the licenses check must fail and name them.
    #[test]
    fn deny_refuses_a_license_that_is_not_allowed() {
        let root = workspace_root();
        let deny_bin = pinned_tools::CARGO_DENY.ensure(&root).unwrap();
        let config = fs::read_to_string(root.join("deny.toml")).unwrap();
        assert!(config.contains("    \"MIT\",\n"), "deny.toml allows MIT");
        let scratch = Scratch::new("deny");
        scratch.file("deny.toml", &config.replace("    \"MIT\",\n", ""));
        let report = failure(deny(&deny_bin, &root, &scratch.0.join("deny.toml")).unwrap());
        assert!(report.contains("error[rejected]"), "{report}");
        assert!(report.contains("licenses FAILED"), "{report}");
    }
}
