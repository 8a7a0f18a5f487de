//! The gate's steps about the repository itself rather than what it deploys: its documentation
//! (links, references, the README's pattern map), its pipeline files, its wire contracts and its
//! dependency graph. Each check is its own module; this one runs them and records the outcomes.

use std::{fs, path::Path};

use anyhow::Context as _;

use super::{
    Outcome, Report, contracts, dependencies, docs, pattern_map, pinned_tools, tools, tools::Venv,
    workflows,
};

/// Runs every repository step under `root`, recording each in `report`. Steps that need the
/// Python tools fail when `venv` could not be built.
pub fn run(root: &Path, venv: Option<&Venv>, report: &mut Report) {
    report.record_result(
        "docs: links, fragments and references resolve inside the repository",
        docs_links(root),
    );
    report.record_result(
        "docs: every test the README's pattern map names exists",
        pattern_map_tests(root),
    );
    match venv {
        Some(venv) => {
            report.record_result(
                "workflows: actionlint + shellcheck (.github/workflows)",
                workflows::actionlint(venv, root),
            );
            report.record_result(
                "workflows: actions pinned by commit, images.yml builds every service on its ports",
                workflow_consistency(root, venv),
            );
        }
        None => report.record(
            "workflows (.github/workflows)",
            Outcome::Fail("needs .venv-deploy".to_owned()),
        ),
    }
    match pinned_tools::buf(root) {
        Ok(buf) => {
            report.record_result(
                "contracts: buf lint (proto/, buf.yaml)",
                contracts::lint(&buf, root),
            );
            report.record_result(
                "contracts: buf breaking against the released contract",
                contracts::breaking(&buf, root),
            );
        }
        Err(err) => report.record("contracts: buf", Outcome::Fail(format!("{err:#}"))),
    }
    report.record_result(
        "dependencies: cargo machete --with-metadata (no unused dependency)",
        pinned_tools::CARGO_MACHETE
            .ensure(root)
            .and_then(|machete| dependencies::machete(&machete, root)),
    );
    report.record_result(
        "dependencies: cargo deny check licenses bans sources (deny.toml)",
        pinned_tools::CARGO_DENY
            .ensure(root)
            .and_then(|deny| dependencies::deny(&deny, root, &root.join("deny.toml"))),
    );
}

fn docs_links(root: &Path) -> anyhow::Result<Outcome> {
    let summary = docs::check(root)?;
    let detail = format!(
        "{} references in {} files (external links are not checked: offline)",
        summary.references, summary.files
    );
    Ok(if summary.problems.is_empty() {
        Outcome::Pass(detail)
    } else {
        let mut lines: Vec<String> = summary.problems.iter().map(ToString::to_string).collect();
        lines.push(detail);
        Outcome::Fail(lines.join("\n"))
    })
}

fn pattern_map_tests(root: &Path) -> anyhow::Result<Outcome> {
    let summary = pattern_map::check(root)?;
    let detail = format!("{} test names in {} rows", summary.names, summary.rows);
    Ok(if summary.problems.is_empty() {
        Outcome::Pass(detail)
    } else {
        Outcome::Fail(summary.problems.join("\n"))
    })
}

fn workflow_consistency(root: &Path, venv: &Venv) -> anyhow::Result<Outcome> {
    let mut problems = Vec::new();
    for file in workflows::files(root)? {
        let text =
            fs::read_to_string(root.join(&file)).with_context(|| format!("cannot read {file}"))?;
        problems.extend(workflows::check_pins(&file, &text));
    }
    let images = format!("{}/images.yml", workflows::DIRECTORY);
    let workflow = tools::yaml_documents(venv, &root.join(&images))?
        .into_iter()
        .next()
        .with_context(|| format!("{images} is empty"))?;
    let services: Vec<workflows::ImageService> = crate::services::SERVICES
        .iter()
        .filter(|service| root.join("services").join(service.name).is_dir())
        .map(|service| {
            (
                service.name.to_owned(),
                service.api_port,
                service.admin_port,
            )
        })
        .collect();
    problems.extend(workflows::check_image_matrix(&workflow, &services));
    Ok(if problems.is_empty() {
        Outcome::Pass(format!("{} images", services.len()))
    } else {
        Outcome::Fail(problems.join("\n"))
    })
}
