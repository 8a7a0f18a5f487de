//! The gate's steps about the repository itself rather than what it deploys: its documentation
//! (links, references, the README's pattern map), its pipeline files, its wire contracts and its
//! dependency graph. Each step is its own module; this one records them in the report.

use std::path::Path;

use super::{Outcome, Report, docs, pattern_map};

/// Runs every repository step under `root`, recording each in `report`.
pub fn run(root: &Path, report: &mut Report) {
    report.record_result(
        "docs: links, fragments and references resolve inside the repository",
        docs_links(root),
    );
    report.record_result(
        "docs: every test the README's pattern map names exists",
        pattern_map_tests(root),
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
