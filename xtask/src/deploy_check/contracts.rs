//! The wire contracts: `buf lint` and `buf breaking` over `proto/`, with `buf.yaml`.
//!
//! * **lint**: buf's STANDARD style guide, on every package, events included.
//! * **breaking**: the protos against [`RELEASED`], an image (`buf build -o`) of the contract as
//!   last released, with buf's FILE rules: deleting or renumbering a field, changing its type,
//!   removing an RPC or an enum value, renaming anything the generated code names. A change that
//!   needs one of those is a new package version (`shop.orders.v2`) beside the old one, not an
//!   edit of `v1`.
//!
//! Releasing refreshes the image, so the next change is compared with what was released
//! (docs/deployment.md, "Contract checks").

use std::{path::Path, process::Command};

use super::{
    Outcome,
    tools::{capture, combined},
};

/// The image of the last released contract, relative to the repository root.
pub const RELEASED: &str = "proto/released/v1.binpb";

/// `buf lint` in `root` (where `buf.yaml` is).
pub fn lint(buf: &Path, root: &Path) -> anyhow::Result<Outcome> {
    let output =
        capture(
            Command::new(buf)
                .current_dir(root)
                .args(["lint", "--error-format", "text"]),
        )?;
    Ok(if output.status.success() {
        Outcome::Pass(String::new())
    } else {
        Outcome::Fail(combined(&output))
    })
}

/// `buf breaking` in `root` against [`RELEASED`].
pub fn breaking(buf: &Path, root: &Path) -> anyhow::Result<Outcome> {
    if !root.join(RELEASED).is_file() {
        return Ok(Outcome::Fail(format!(
            "{RELEASED} is missing: build it from the released protos with \
             `buf build --exclude-source-info -o {RELEASED}`"
        )));
    }
    let output = capture(Command::new(buf).current_dir(root).args([
        "breaking",
        "--error-format",
        "text",
        "--against",
        RELEASED,
    ]))?;
    Ok(if output.status.success() {
        Outcome::Pass(format!("against {RELEASED}"))
    } else {
        Outcome::Fail(combined(&output))
    })
}

#[cfg(test)]
mod tests {
    use std::{fs, path::PathBuf};

    use super::{super::pinned_tools, *};

    /// A copy of the repository's contract (buf.yaml, proto/, the released image) to change.
    struct Copy(PathBuf);

    impl Copy {
        fn new(name: &str) -> Self {
            let root = super::super::workspace_root();
            let dir = std::env::temp_dir()
                .join(format!("ferroshop-contracts-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            copy_tree(&root.join("proto"), &dir.join("proto"));
            fs::copy(root.join("buf.yaml"), dir.join("buf.yaml")).unwrap();
            Self(dir)
        }

        fn edit(&self, file: &str, from: &str, to: &str) {
            let path = self.0.join(file);
            let text = fs::read_to_string(&path).unwrap();
            assert_eq!(text.matches(from).count(), 1, "{from:?} in {file}");
            fs::write(path, text.replacen(from, to, 1)).unwrap();
        }
    }

    impl Drop for Copy {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn copy_tree(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_tree(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    fn failure(outcome: Outcome) -> String {
        match outcome {
            Outcome::Fail(text) => text,
            Outcome::Pass(text) | Outcome::Skip(text) => panic!("expected a failure: {text}"),
        }
    }

    /// One buf installation for the tests (the gate's, installing it if needed).
    fn buf() -> PathBuf {
        pinned_tools::buf(&super::super::workspace_root()).unwrap()
    }

    #[test]
    fn the_contract_as_released_passes_and_breaking_changes_fail_with_bufs_message() {
        let buf = buf();
        let copy = Copy::new("breaking");
        assert!(matches!(breaking(&buf, &copy.0).unwrap(), Outcome::Pass(_)));
        assert!(matches!(lint(&buf, &copy.0).unwrap(), Outcome::Pass(_)));

        // An event consumer of the released contract would decode these wrongly or not at all.
        let events = "proto/shop/events/v1/orders.proto";
        copy.edit(events, "  int64 quantity = 2;", "  string quantity = 2;");
        copy.edit(
            events,
            "  string payment_id = 3;\n  shop.common.v1.Money total = 4;",
            "  string payment_id = 5;\n  shop.common.v1.Money total = 4;",
        );
        let report = failure(breaking(&buf, &copy.0).unwrap());
        for expected in [
            "proto/shop/events/v1/orders.proto:9:3:Field \"2\" with name \"quantity\" on message \
             \"OrderLineItem\" changed type from \"int64\" to \"string\".",
            "Previously present field \"3\" with name \"payment_id\" on message \
             \"OrderConfirmed\" was deleted.",
        ] {
            assert!(
                report.contains(expected),
                "{expected:?} missing in:\n{report}"
            );
        }
    }

    #[test]
    fn lint_refuses_a_message_outside_the_style_guide() {
        let buf = buf();
        let copy = Copy::new("lint");
        copy.edit(
            "proto/shop/common/v1/money.proto",
            "message Money {",
            "message money_amount {\n  int64 minor = 1;\n}\n\nmessage Money {",
        );
        let report = failure(lint(&buf, &copy.0).unwrap());
        assert!(
            report.contains("Message name \"money_amount\" should be PascalCase"),
            "{report}"
        );
    }
}
