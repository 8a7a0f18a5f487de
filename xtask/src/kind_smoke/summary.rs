//! The table printed at the end: one line per step with its outcome and duration.

use std::{fmt::Write as _, time::Duration};

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done, with a short detail (may be empty).
    Passed(String),
    /// Failed, with the error.
    Failed(String),
    /// Not run because an earlier step failed.
    Skipped,
}

/// One row of the summary.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub step: String,
    pub outcome: Outcome,
    pub duration: Duration,
}

/// `1m05s`, `42s`, `0s`.
fn duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds >= 60 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds}s")
    }
}

/// The summary: a header, one aligned line per step (outcome, duration, step, first line of
/// the detail or error), then the totals.
pub fn render(results: &[StepResult]) -> String {
    let mut out = String::from("kind-smoke summary:\n");
    let width = results.iter().map(|r| r.step.len()).max().unwrap_or(0);
    let mut total = Duration::ZERO;
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for result in results {
        total += result.duration;
        let (label, detail) = match &result.outcome {
            Outcome::Passed(detail) => {
                passed += 1;
                ("PASS", detail.as_str())
            }
            Outcome::Failed(error) => {
                failed += 1;
                ("FAIL", error.as_str())
            }
            Outcome::Skipped => {
                skipped += 1;
                ("SKIP", "an earlier step failed")
            }
        };
        let detail = detail.lines().next().unwrap_or_default();
        let _ = write!(
            out,
            "  {label}  {:>6}  {:<width$}",
            duration(result.duration),
            result.step
        );
        if detail.is_empty() {
            out = out.trim_end().to_owned();
            out.push('\n');
        } else {
            let _ = writeln!(out, "  {detail}");
        }
    }
    let _ = write!(
        out,
        "kind-smoke: {passed} passed, {failed} failed, {skipped} skipped in {}",
        duration(total)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_gets_a_line_with_outcome_and_duration_then_totals() {
        let results = [
            StepResult {
                step: "terraform apply".into(),
                outcome: Outcome::Passed("cluster ferroshop-smoke".into()),
                duration: Duration::from_secs(605),
            },
            StepResult {
                step: "journey".into(),
                outcome: Outcome::Failed("order not confirmed\nbody: {}".into()),
                duration: Duration::from_millis(42_500),
            },
            StepResult {
                step: "destroy".into(),
                outcome: Outcome::Passed(String::new()),
                duration: Duration::from_secs(30),
            },
            StepResult {
                step: "later".into(),
                outcome: Outcome::Skipped,
                duration: Duration::ZERO,
            },
        ];
        assert_eq!(
            render(&results),
            "kind-smoke summary:\n\
             \x20 PASS  10m05s  terraform apply  cluster ferroshop-smoke\n\
             \x20 FAIL     42s  journey          order not confirmed\n\
             \x20 PASS     30s  destroy\n\
             \x20 SKIP      0s  later            an earlier step failed\n\
             kind-smoke: 2 passed, 1 failed, 1 skipped in 11m17s"
        );
    }
}
