//! The pipeline a fork runs: the GitHub Actions workflows in `.github/workflows/`.
//!
//! * **actionlint** (with ShellCheck on every `run:` script): syntax, expressions and their
//!   types, known inputs of the actions used, runner labels, script injection through untrusted
//!   `${{ … }}` in scripts. Both come from `.venv-deploy` (`requirements-deploy.txt`).
//! * **Pins**: every action from another repository is pinned by a full commit SHA, with the
//!   release it is in a comment beside it (`uses: owner/repo@<40 hex> # v1.2.3`). A tag can be
//!   moved to other code after review; a commit cannot.
//! * **The image matrix** of `images.yml` builds exactly the services of `xtask/src/services.rs`,
//!   each with its API and admin ports (the Dockerfile's `API_PORT` and `ADMIN_PORT`).
//!
//! Nothing is run on GitHub from here: the workflows themselves are only exercised by a push to
//! a fork.

use std::{fs, path::Path, process::Command};

use anyhow::Context as _;
use serde_json::Value;

use super::{
    Outcome,
    tools::{Venv, capture, combined},
};

/// Where the workflows live, relative to the repository root.
pub const DIRECTORY: &str = ".github/workflows";

/// The workflow files, sorted.
pub fn files(root: &Path) -> anyhow::Result<Vec<String>> {
    let dir = root.join(DIRECTORY);
    let mut files = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yml") || name.ends_with(".yaml") {
            files.push(format!("{DIRECTORY}/{name}"));
        }
    }
    files.sort();
    Ok(files)
}

/// actionlint over every workflow under `root`, with ShellCheck for the scripts.
pub fn actionlint(venv: &Venv, root: &Path) -> anyhow::Result<Outcome> {
    let files = files(root)?;
    if files.is_empty() {
        return Ok(Outcome::Fail(format!("no workflow in {DIRECTORY}/")));
    }
    let output = capture(
        Command::new(venv.bin("actionlint"))
            .current_dir(root)
            .arg("-no-color")
            .arg("-shellcheck")
            .arg(venv.bin("shellcheck"))
            .args(&files),
    )?;
    Ok(if output.status.success() {
        Outcome::Pass(format!("{} workflows", files.len()))
    } else {
        Outcome::Fail(combined(&output))
    })
}

/// Actions from other repositories that are not pinned to a commit with its release beside it.
pub fn check_pins(file: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let Some(used) = line
            .trim_start()
            .trim_start_matches("- ")
            .trim_start()
            .strip_prefix("uses:")
        else {
            continue;
        };
        let (reference, comment) = match used.split_once('#') {
            Some((reference, comment)) => (reference.trim(), comment.trim()),
            None => (used.trim(), ""),
        };
        let reference = reference.trim_matches(['"', '\'']);
        // Local actions and container images are not fetched from another repository.
        if reference.starts_with("./") || reference.starts_with("docker://") {
            continue;
        }
        let at = format!("{file}:{}", index + 1);
        match reference.rsplit_once('@') {
            Some((_, commit))
                if commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                if !comment.starts_with('v') {
                    problems.push(format!(
                        "{at}: {reference} needs the release it pins in a comment (`# v1.2.3`)"
                    ));
                }
            }
            _ => problems.push(format!(
                "{at}: {reference} must be pinned to a full commit SHA (`owner/repo@<40 hex> # \
                 v1.2.3`): a tag can be moved"
            )),
        }
    }
    problems
}

/// A service an image is built for: name, API port, admin port.
pub type ImageService = (String, u16, u16);

/// The `include` matrix of the `image` job of `images.yml` against `services`.
pub fn check_image_matrix(workflow: &Value, services: &[ImageService]) -> Vec<String> {
    let Some(include) = workflow
        .pointer("/jobs/image/strategy/matrix/include")
        .and_then(Value::as_array)
    else {
        return vec![format!(
            "{DIRECTORY}/images.yml has no job `image` with a `strategy.matrix.include` list"
        )];
    };
    let port = |entry: &Value, key: &str| {
        entry
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|port| u16::try_from(port).ok())
    };
    let mut problems = Vec::new();
    let mut built = Vec::new();
    for entry in include {
        let Some(name) = entry.get("service").and_then(Value::as_str) else {
            problems.push(format!(
                "an images.yml matrix entry has no service: {entry}"
            ));
            continue;
        };
        built.push(name.to_owned());
        match services.iter().find(|(service, _, _)| service == name) {
            None => problems.push(format!(
                "images.yml builds {name:?}, which is not a service of xtask/src/services.rs"
            )),
            Some((_, api, admin)) => {
                let found = (port(entry, "api_port"), port(entry, "admin_port"));
                if found != (Some(*api), Some(*admin)) {
                    problems.push(format!(
                        "images.yml builds {name} with api_port/admin_port {found:?}; \
                         xtask/src/services.rs runs it on {api}/{admin}"
                    ));
                }
            }
        }
    }
    for (service, _, _) in services {
        if !built.contains(service) {
            problems.push(format!(
                "images.yml builds no image of {service} (add it to the matrix of job `image`)"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn services() -> Vec<ImageService> {
        vec![
            ("users".to_owned(), 50051, 9101),
            ("gateway".to_owned(), 8080, 9100),
        ]
    }

    fn workflow(include: Value) -> Value {
        json!({ "jobs": { "image": { "strategy": { "matrix": { "include": include } } } } })
    }

    #[test]
    fn the_image_matrix_must_build_every_service_on_its_ports() {
        let good = workflow(json!([
            { "service": "users", "api_port": 50051, "admin_port": 9101 },
            { "service": "gateway", "api_port": 8080, "admin_port": 9100 },
        ]));
        assert_eq!(check_image_matrix(&good, &services()), Vec::<String>::new());

        let drifted = workflow(json!([
            { "service": "users", "api_port": 50052, "admin_port": 9101 },
            { "service": "billing", "api_port": 50060, "admin_port": 9110 },
        ]));
        assert_eq!(
            check_image_matrix(&drifted, &services()),
            [
                "images.yml builds users with api_port/admin_port (Some(50052), Some(9101)); \
                 xtask/src/services.rs runs it on 50051/9101",
                "images.yml builds \"billing\", which is not a service of xtask/src/services.rs",
                "images.yml builds no image of gateway (add it to the matrix of job `image`)",
            ]
        );
        assert_eq!(check_image_matrix(&json!({}), &services()).len(), 1);
    }

    #[test]
    fn actions_must_be_pinned_by_commit_with_their_release() {
        let text = concat!(
            "steps:\n",
            "  - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0\n",
            "  - uses: ./.github/actions/local\n",
            "  - uses: docker://alpine:3.20\n",
            "  - uses: actions/cache@v4\n",
            "  - name: x\n",
            "    uses: \"docker/login-action@5e57cd118135c172c3672efd75eb46360885c0ef\"\n",
        );
        assert_eq!(
            check_pins("ci.yml", text),
            [
                "ci.yml:5: actions/cache@v4 must be pinned to a full commit SHA \
                 (`owner/repo@<40 hex> # v1.2.3`): a tag can be moved",
                "ci.yml:7: docker/login-action@5e57cd118135c172c3672efd75eb46360885c0ef needs \
                 the release it pins in a comment (`# v1.2.3`)",
            ]
        );
    }

    /// actionlint itself, on a workflow with the mistakes it exists for. Uses `.venv-deploy`,
    /// installing it first if needed (as the gate does).
    #[test]
    fn actionlint_fails_a_broken_workflow_and_passes_a_good_one() {
        let venv = Venv::ensure(&super::super::workspace_root()).unwrap();
        let dir = std::env::temp_dir().join(format!("ferroshop-actionlint-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join(DIRECTORY)).unwrap();
        let good = concat!(
            "name: good\n",
            "on: push\n",
            "permissions: {}\n",
            "jobs:\n",
            "  x:\n",
            "    runs-on: ubuntu-24.04\n",
            "    steps:\n",
            "      - env:\n",
            "          MESSAGE: ${{ github.event.head_commit.message }}\n",
            "        run: echo \"$MESSAGE\"\n",
        );
        fs::write(dir.join(DIRECTORY).join("good.yml"), good).unwrap();
        let outcome = actionlint(&venv, &dir).unwrap();
        assert!(matches!(outcome, Outcome::Pass(_)), "{}", text(&outcome));

        let broken = concat!(
            "name: broken\n",
            "on: push\n",
            "jobs:\n",
            "  x:\n",
            "    runs-on: ubuntu-24.04\n",
            "    timeout-minutes: ten\n",
            "    steps:\n",
            "      - run: echo ${{ github.event.head_commit.message }} $UNQUOTED\n",
        );
        fs::write(dir.join(DIRECTORY).join("broken.yml"), broken).unwrap();
        let outcome = actionlint(&venv, &dir).unwrap();
        let report = text(&outcome);
        assert!(matches!(outcome, Outcome::Fail(_)), "{report}");
        for expected in [
            "broken.yml:6:",
            "\"github.event.head_commit.message\" is potentially untrusted",
            "SC2086",
        ] {
            assert!(
                report.contains(expected),
                "{expected:?} missing in:\n{report}"
            );
        }
        assert!(!report.contains("good.yml"), "{report}");
        let _ = fs::remove_dir_all(&dir);
    }

    fn text(outcome: &Outcome) -> &str {
        match outcome {
            Outcome::Pass(text) | Outcome::Fail(text) | Outcome::Skip(text) => text,
        }
    }
}
