//! The Terraform steps: `fmt -check`, exact pins, and `init -backend=false` + `validate` +
//! `test` (in a copy under target/deploy-check/) for every directory whose providers the local
//! mirror holds; the others are reported as skipped with the providers they need.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;

use super::{
    Outcome, Report, charts, hcl, plan_known, terraform,
    tools::{capture, combined, tail},
};

fn read_chart_list(root: &Path) -> anyhow::Result<serde_json::Value> {
    let path = root.join(charts::VERSIONS_FILE);
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// Where the machine keeps Terraform providers (the gate installs nothing else).
const DEFAULT_PROVIDER_MIRROR: &str = "/opt/tf-plugins";

fn terraform(scratch: &Path) -> Command {
    let mut command = Command::new("terraform");
    command
        .env("TF_CLI_CONFIG_FILE", scratch.join("terraformrc"))
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .env("CHECKPOINT_DISABLE", "1");
    command
}

/// Copies a Terraform directory, leaving out what `init` and `apply` create.
fn copy_configuration(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name == ".terraform" || name.starts_with(".terraform.lock") || name.contains(".tfstate")
        {
            continue;
        }
        if path.is_dir() {
            copy_configuration(&path, &to.join(name))?;
        } else {
            fs::copy(&path, to.join(name))?;
        }
    }
    Ok(())
}

pub fn run(root: &Path, scratch: &Path, report: &mut Report) {
    let mirror_path = std::env::var("FERROSHOP_TF_PROVIDER_MIRROR")
        .map_or_else(|_| PathBuf::from(DEFAULT_PROVIDER_MIRROR), PathBuf::from);
    let mirror = terraform::read_mirror(&mirror_path);
    if let Err(err) = fs::write(
        scratch.join("terraformrc"),
        terraform::cli_config(&mirror_path, &mirror),
    ) {
        report.record(
            "terraform",
            Outcome::Fail(format!("cannot write the CLI configuration: {err}")),
        );
        return;
    }
    let terraform_root = root.join("terraform");

    let fmt = capture(terraform(scratch).current_dir(root).args([
        "fmt",
        "-check",
        "-recursive",
        "-no-color",
        "terraform",
    ]))
    .map(|output| {
        if output.status.success() {
            Outcome::Pass(String::new())
        } else {
            Outcome::Fail(format!(
                "run `terraform fmt -recursive terraform`:\n{}",
                combined(&output)
            ))
        }
    });
    report.record_result("terraform fmt -check -recursive", fmt);

    let dirs = match terraform::directories(&terraform_root) {
        Ok(dirs) => dirs,
        Err(err) => {
            report.record("terraform", Outcome::Fail(format!("{err:#}")));
            return;
        }
    };
    let mut pin_problems = Vec::new();
    let mut plans = Vec::new();
    for dir in &dirs {
        let relative = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
        match terraform::requirements(dir) {
            Ok(requirements) => {
                for (source, version) in &requirements {
                    if !terraform::is_exact_version(version) {
                        pin_problems.push(format!("{relative}: provider {source} is not pinned to an exact version ({version:?})"));
                    }
                }
                if requirements.is_empty() {
                    pin_problems.push(format!("{relative}: no required_providers block"));
                }
                plans.push((relative, dir.clone(), requirements));
            }
            Err(err) => pin_problems.push(format!("{relative}: {err:#}")),
        }
    }
    let configuration = hcl::Configuration::load(&terraform_root);
    match &configuration {
        Ok(configuration) => match read_chart_list(root) {
            Ok(list) => pin_problems.extend(charts::check(configuration, &list)),
            Err(err) => pin_problems.push(format!("{err:#}")),
        },
        Err(err) => pin_problems.push(format!("{err:#}")),
    }
    report.record(
        &format!(
            "terraform: every provider and chart version pinned, every chart pin listed in {}",
            charts::VERSIONS_FILE
        ),
        if pin_problems.is_empty() {
            Outcome::Pass(String::new())
        } else {
            Outcome::Fail(pin_problems.join("\n"))
        },
    );
    report.record_result(
        "terraform: for_each keys and counts known at plan (no data source deferred to apply)",
        configuration.map(|configuration| {
            let problems = plan_known::check(&configuration);
            if problems.is_empty() {
                Outcome::Pass(format!(
                    "{} module directories, from {}",
                    configuration.modules.len(),
                    configuration
                        .roots()
                        .map(|root| format!("terraform/{}", root.dir))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            } else {
                Outcome::Fail(problems.join("\n"))
            }
        }),
    );

    for (relative, dir, requirements) in plans {
        let step = format!("terraform init/validate/test {relative}");
        if let Some(reason) = terraform::uninstallable(&requirements, &mirror) {
            report.record(
                &step,
                Outcome::Skip(format!(
                    "not initialised: {reason}; checked by fmt, pins and checkov only"
                )),
            );
            continue;
        }
        let copy = scratch.join(&relative);
        let result = (|| -> anyhow::Result<Outcome> {
            copy_configuration(&dir, &copy)?;
            let mut done = Vec::new();
            for (what, args) in [
                (
                    "init",
                    vec!["init", "-backend=false", "-input=false", "-no-color"],
                ),
                ("validate", vec!["validate", "-no-color"]),
            ] {
                let output = capture(terraform(scratch).current_dir(&copy).args(&args))?;
                if !output.status.success() {
                    return Ok(Outcome::Fail(format!(
                        "terraform {what}:\n{}",
                        tail(&combined(&output), 30)
                    )));
                }
                done.push(what.to_owned());
            }
            let has_tests = fs::read_dir(copy.join("tests")).is_ok_and(|entries| {
                entries
                    .filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().ends_with(".tftest.hcl"))
            });
            if has_tests {
                let output = capture(
                    terraform(scratch)
                        .current_dir(&copy)
                        .args(["test", "-no-color"]),
                )?;
                let text = combined(&output);
                if !output.status.success() {
                    return Ok(Outcome::Fail(format!(
                        "terraform test:\n{}",
                        tail(&text, 40)
                    )));
                }
                let summary = text
                    .lines()
                    .rev()
                    .find(|l| l.contains("passed"))
                    .unwrap_or("test passed");
                done.push(format!("test ({})", summary.trim()));
            }
            Ok(Outcome::Pass(done.join(", ")))
        })();
        report.record_result(&step, result);
    }
}
