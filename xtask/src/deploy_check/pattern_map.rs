//! The README's pattern map promises, for every pattern, the tests that fail when it breaks (its
//! "proven by" column). This step checks that every test it names exists in this checkout.
//!
//! The names in a "proven by" cell, in code spans, and how each must resolve:
//!
//! | written | must be |
//! |---|---|
//! | `services/x/tests/a.rs::name` | a `fn name` in that file |
//! | `services/x/tests/a.rs`, `services/*/tests/a.rs` | an existing file (a `*` segment: at least one match) |
//! | `services/x/tests/a.rs` (`name`, `other`) | each identifier in the parentheses right after a file: a `fn` in that file (in one of the files a `*` matches) |
//! | `crate::module::tests`, `crate::module::tests::name` | a module of a workspace crate, declared with `mod` (`#[path]` respected), and then a `fn` in it; a path that does not start with a crate name is looked up in every crate (`deploy_check::manifests::tests`) |
//! | `…::name` | `name` in place of the last segment of the previous file or module path of the cell |
//!
//! Other code spans (URLs, headers, commands) are prose and not checked.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

/// What the check found.
#[derive(Debug, Default)]
pub struct Summary {
    /// Table rows read.
    pub rows: usize,
    /// Names resolved.
    pub names: usize,
    pub problems: Vec<String>,
}

/// Checks the pattern map of the README.md in `root` against the workspace at `root`.
pub fn check(root: &Path) -> anyhow::Result<Summary> {
    let readme = fs::read_to_string(root.join("README.md")).context("cannot read README.md")?;
    let modules = ModuleTree::load(root)?;
    let rows = proven_by_cells(&readme)?;
    let mut summary = Summary {
        rows: rows.len(),
        ..Summary::default()
    };
    for (line, pattern, cell) in rows {
        for name in names(&cell, &|path| modules.is_module(path)) {
            summary.names += 1;
            if let Err(problem) = resolve(root, &modules, &name) {
                summary
                    .problems
                    .push(format!("README.md:{line}: {pattern}: {problem}"));
            }
        }
    }
    Ok(summary)
}

/// (line number, pattern, "proven by" cell) of every row of the table under `## Pattern map`.
fn proven_by_cells(readme: &str) -> anyhow::Result<Vec<(usize, String, String)>> {
    let mut rows = Vec::new();
    let mut inside = false;
    let mut header_seen = false;
    for (index, line) in readme.lines().enumerate() {
        if line.starts_with('#') {
            inside = line.trim_start_matches('#').trim() == "Pattern map";
            continue;
        }
        if !inside || !line.trim_start().starts_with('|') {
            continue;
        }
        let cells = table_cells(line);
        if cells
            .iter()
            .all(|cell| cell.chars().all(|c| "-: ".contains(c)))
        {
            continue;
        }
        if !header_seen {
            header_seen = true;
            continue;
        }
        let [pattern, _where, proven_by, ..] = cells.as_slice() else {
            bail!(
                "README.md:{}: a pattern map row needs three cells",
                index + 1
            );
        };
        rows.push((index + 1, pattern.clone(), proven_by.clone()));
    }
    if rows.is_empty() {
        bail!("README.md has no `## Pattern map` table");
    }
    Ok(rows)
}

/// The cells of a Markdown table row; a `|` inside a code span does not split.
fn table_cells(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut in_code = false;
    for c in line.trim().trim_start_matches('|').chars() {
        match c {
            '`' => {
                in_code = !in_code;
                cell.push(c);
            }
            '|' if !in_code => cells.push(std::mem::take(&mut cell).trim().to_owned()),
            _ => cell.push(c),
        }
    }
    if !cell.trim().is_empty() {
        cells.push(cell.trim().to_owned());
    }
    cells
}

/// A test name as written in a cell, with what an abbreviation continues.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    /// A path in the repository, maybe with `*` segments.
    File(String),
    /// `fn` `name` in `file`.
    FileFn { file: String, name: String },
    /// A Rust path: a module, or a module and a `fn`.
    RustPath(Vec<String>),
}

/// The names in one "proven by" cell, with every abbreviation expanded (`is_module` tells
/// whether `…::name` after a Rust path goes inside it or replaces its last segment).
fn names(cell: &str, is_module: &dyn Fn(&[String]) -> bool) -> Vec<Name> {
    let mut names = Vec::new();
    let mut previous: Option<Name> = None;
    // The file whose test names a parenthesised list holds, and the depth of that list.
    let mut list: Option<(String, usize)> = None;
    let mut depth = 0_usize;
    let mut rest = cell;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if list.as_ref().is_some_and(|(_, at)| depth < *at) {
                    list = None;
                }
            }
            '`' => {
                let Some(end) = rest.find('`') else { break };
                let span = rest[..end].trim();
                rest = &rest[end + 1..];
                let name = classify(
                    span,
                    previous.as_ref(),
                    list.as_ref().map(|(f, _)| f),
                    is_module,
                );
                if let Some(Name::File(file)) = &name
                    && rest.trim_start().starts_with('(')
                {
                    list = Some((file.clone(), depth + 1));
                }
                if let Some(name) = name {
                    previous = Some(name.clone());
                    names.push(name);
                }
            }
            _ => {}
        }
    }
    names
}

fn classify(
    span: &str,
    previous: Option<&Name>,
    list: Option<&String>,
    is_module: &dyn Fn(&[String]) -> bool,
) -> Option<Name> {
    if span.contains(char::is_whitespace) {
        return None;
    }
    if let Some(name) = span
        .strip_prefix("…::")
        .or_else(|| span.strip_prefix("...::"))
    {
        return Some(match previous? {
            Name::File(file) | Name::FileFn { file, .. } => Name::FileFn {
                file: file.clone(),
                name: name.to_owned(),
            },
            Name::RustPath(segments) => {
                let mut segments = segments.clone();
                if !is_module(&segments) {
                    segments.pop();
                }
                segments.push(name.to_owned());
                Name::RustPath(segments)
            }
        });
    }
    if let Some((file, name)) = span.split_once(".rs::") {
        return Some(Name::FileFn {
            file: format!("{file}.rs"),
            name: name.to_owned(),
        });
    }
    if span.contains('/') && !span.starts_with('/') && !span.contains("://") {
        return Some(Name::File(span.to_owned()));
    }
    if span.contains("::") {
        return Some(Name::RustPath(
            span.split("::").map(str::to_owned).collect(),
        ));
    }
    let identifier = span.starts_with(|c: char| c.is_ascii_lowercase())
        && span
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    match list {
        Some(file) if identifier => Some(Name::FileFn {
            file: file.clone(),
            name: span.to_owned(),
        }),
        _ => None,
    }
}

fn resolve(root: &Path, modules: &ModuleTree, name: &Name) -> Result<(), String> {
    match name {
        Name::File(pattern) => {
            if expand(root, pattern).is_empty() {
                Err(format!("`{pattern}` does not exist"))
            } else {
                Ok(())
            }
        }
        Name::FileFn { file, name } => {
            let files = expand(root, file);
            if files.is_empty() {
                return Err(format!("`{file}::{name}`: {file} does not exist"));
            }
            let defined = files
                .iter()
                .any(|path| fs::read_to_string(path).is_ok_and(|text| defines_fn(&text, name)));
            if defined {
                Ok(())
            } else {
                Err(format!("`{file}::{name}`: {file} has no `fn {name}`"))
            }
        }
        Name::RustPath(segments) => modules.resolve(segments),
    }
}

/// The paths under `root` that `pattern` names; `*` matches one path segment.
fn expand(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut paths = vec![root.to_path_buf()];
    for segment in pattern.trim_end_matches('/').split('/') {
        let mut next = Vec::new();
        for path in paths {
            if segment == "*" {
                if let Ok(entries) = fs::read_dir(&path) {
                    let mut found: Vec<PathBuf> =
                        entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                    found.sort();
                    next.extend(found);
                }
            } else if path.join(segment).exists() {
                next.push(path.join(segment));
            }
        }
        paths = next;
    }
    paths
}

/// Whether `text` defines `fn name` (a free function, method or test).
fn defines_fn(text: &str, name: &str) -> bool {
    let needle = format!("fn {name}");
    text.match_indices(&needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        before.is_none_or(|c| c.is_whitespace())
            && after.is_some_and(|c| c == '(' || c == '<' || c.is_whitespace())
    })
}

/// Every module of every workspace crate: its path (crate name first) and the file it is in.
struct ModuleTree {
    modules: Vec<(Vec<String>, PathBuf)>,
}

impl ModuleTree {
    fn load(root: &Path) -> anyhow::Result<Self> {
        let manifest =
            fs::read_to_string(root.join("Cargo.toml")).context("cannot read Cargo.toml")?;
        let mut modules = Vec::new();
        for member in workspace_members(&manifest) {
            let dir = root.join(&member);
            let package = fs::read_to_string(dir.join("Cargo.toml"))
                .with_context(|| format!("cannot read {member}/Cargo.toml"))?;
            let Some(name) = package_name(&package) else {
                bail!("{member}/Cargo.toml has no package name");
            };
            let crate_name = name.replace('-', "_");
            for root_file in ["src/lib.rs", "src/main.rs"] {
                let file = dir.join(root_file);
                if file.is_file() {
                    walk(&file, vec![crate_name.clone()], &mut modules)?;
                }
            }
        }
        Ok(Self { modules })
    }

    fn modules_named(&self, prefix: &[String]) -> Vec<&PathBuf> {
        self.modules
            .iter()
            .filter(|(path, _)| path.as_slice() == prefix || path.ends_with(prefix))
            .map(|(_, file)| file)
            .collect()
    }

    fn is_module(&self, path: &[String]) -> bool {
        !self.modules_named(path).is_empty()
    }

    /// The longest leading part of `segments` that names modules (by full path when it starts
    /// with a crate name, else by the end of the path); what follows must end in a `fn`.
    fn resolve(&self, segments: &[String]) -> Result<(), String> {
        let written = segments.join("::");
        for taken in (1..=segments.len()).rev() {
            let prefix = &segments[..taken];
            let matches = self.modules_named(prefix);
            if matches.is_empty() {
                continue;
            }
            let Some(function) = segments[taken..].last() else {
                return Ok(());
            };
            let defined = matches
                .iter()
                .any(|file| fs::read_to_string(file).is_ok_and(|text| defines_fn(&text, function)));
            let prefix = prefix.join("::");
            return match &segments[taken..] {
                _ if defined => Ok(()),
                [_] => Err(format!(
                    "`{written}`: module {prefix} has no `fn {function}`"
                )),
                [next, ..] => Err(format!("`{written}`: {prefix} has no module {next}")),
                [] => Ok(()),
            };
        }
        Err(format!("`{written}` names no module of the workspace"))
    }
}

/// The `members` of `[workspace]`.
fn workspace_members(manifest: &str) -> Vec<String> {
    let Some(start) = manifest.find("members") else {
        return Vec::new();
    };
    let list = &manifest[start..];
    let (Some(open), Some(close)) = (list.find('['), list.find(']')) else {
        return Vec::new();
    };
    list[open + 1..close]
        .split(',')
        .map(|item| item.trim().trim_matches('"').to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

fn package_name(manifest: &str) -> Option<String> {
    manifest.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "name").then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Records the module in `file` at `path` and, recursively, every module it declares.
fn walk(
    file: &Path,
    path: Vec<String>,
    modules: &mut Vec<(Vec<String>, PathBuf)>,
) -> anyhow::Result<()> {
    let text =
        fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    modules.push((path.clone(), file.to_path_buf()));
    let dir = file.parent().unwrap_or(Path::new("."));
    let owns_dir = matches!(
        file.file_name().and_then(|n| n.to_str()),
        Some("lib.rs" | "main.rs" | "mod.rs")
    );
    let children = if owns_dir {
        dir.to_path_buf()
    } else {
        dir.join(file.file_stem().unwrap_or_default())
    };
    let lines: Vec<&str> = text.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let Some((name, inline)) = module_declaration(line) else {
            continue;
        };
        let mut child = path.clone();
        child.push(name.clone());
        if inline {
            modules.push((child, file.to_path_buf()));
            continue;
        }
        let attribute = lines[index.saturating_sub(3)..index]
            .iter()
            .find_map(|line| path_attribute(line));
        let candidates = match attribute {
            Some(relative) => vec![dir.join(relative)],
            None => vec![
                children.join(format!("{name}.rs")),
                children.join(&name).join("mod.rs"),
            ],
        };
        if let Some(found) = candidates.into_iter().find(|c| c.is_file()) {
            walk(&found, child, modules)?;
        }
    }
    Ok(())
}

/// `mod name;` (false) or `mod name {` (true), with any visibility.
fn module_declaration(line: &str) -> Option<(String, bool)> {
    let mut rest = line.trim();
    if let Some(after) = rest.strip_prefix("pub") {
        rest = after.trim_start();
        if rest.starts_with('(') {
            rest = rest[rest.find(')')? + 1..].trim_start();
        }
    }
    let rest = rest.strip_prefix("mod ")?.trim_start();
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let (name, tail) = rest.split_at(end);
    match tail.trim_start().chars().next()? {
        ';' => Some((name.to_owned(), false)),
        '{' => Some((name.to_owned(), true)),
        _ => None,
    }
}

/// The file of `#[path = "file"]`.
fn path_attribute(line: &str) -> Option<&str> {
    let inner = line
        .trim()
        .strip_prefix("#[path")?
        .trim_start()
        .strip_prefix('=')?;
    let inner = inner.trim_start().strip_prefix('"')?;
    inner.split('"').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tree(PathBuf);

    impl Tree {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "ferroshop-pattern-map-{name}-{}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            let tree = Self(dir);
            tree.file(
                "Cargo.toml",
                "[workspace]\nmembers = [\n    \"libs/kit\",\n    \"services/shop\",\n]\n",
            )
            .file("libs/kit/Cargo.toml", "[package]\nname = \"kit\"\n")
            .file(
                "libs/kit/src/lib.rs",
                "pub mod breaker;\n#[cfg(test)]\nmod tests {\n    fn a_unit_test() {}\n}\n",
            )
            .file(
                "libs/kit/src/breaker/mod.rs",
                "mod machine;\n#[cfg(test)]\nmod tests;\n",
            )
            .file(
                "libs/kit/src/breaker/tests.rs",
                "fn opens_after_failures() {}\n",
            )
            .file(
                "libs/kit/src/breaker/machine.rs",
                "#[cfg(test)]\n#[path = \"machine_tests.rs\"]\nmod tests;\n",
            )
            .file(
                "libs/kit/src/breaker/machine_tests.rs",
                "fn half_open_probes() {}\n",
            )
            .file("services/shop/Cargo.toml", "[package]\nname = \"shop\"\n")
            .file("services/shop/src/main.rs", "mod checks;\nfn main() {}\n")
            .file(
                "services/shop/src/checks.rs",
                "pub(crate) mod drift {\n    fn drift_is_reported() {}\n}\n",
            )
            .file(
                "services/shop/tests/journey.rs",
                "#[tokio::test]\nasync fn an_order_is_confirmed() {}\nasync fn twice() {}\n",
            );
            tree
        }

        fn file(&self, path: &str, text: &str) -> &Self {
            let path = self.0.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
            self
        }

        fn readme(&self, rows: &[&str]) -> Summary {
            let mut text =
                "# Shop\n\n## Pattern map\n\n| pattern | where | proven by |\n|---|---|---|\n"
                    .to_owned();
            for row in rows {
                text.push_str(row);
                text.push('\n');
            }
            text.push_str(
                "\n## Contracts\n\n| not | the | map |\n|---|---|---|\n| a | b | `x` |\n",
            );
            self.file("README.md", &text);
            check(&self.0).unwrap()
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn every_way_of_naming_a_test_resolves() {
        let tree = Tree::new("resolves");
        let summary = tree.readme(&[
            "| saga | `services/shop/src/` | `services/shop/tests/journey.rs::an_order_is_confirmed`, `…::twice` |",
            "| breaker | `libs/kit` | `kit::breaker::tests::opens_after_failures`, `kit::breaker::machine::tests`, `…::half_open_probes`, `kit::breaker` tests |",
            "| drift | x | `checks::drift::drift_is_reported`, `shop::checks::drift`, `kit::tests::a_unit_test` |",
            "| files | x | `services/*/tests/journey.rs` (`an_order_is_confirmed`, `twice`); prose `/api/openapi.json`, `Idempotency-Key`, `cargo xtask test` |",
        ]);
        assert_eq!(summary.problems, Vec::<String>::new());
        assert_eq!((summary.rows, summary.names), (4, 12));
    }

    #[test]
    fn names_that_do_not_resolve_are_reported_by_row() {
        let tree = Tree::new("broken");
        let summary = tree.readme(&[
            "| saga | x | `services/shop/tests/journey.rs::a_renamed_test`, `…::gone`, `services/shop/tests/crash.rs` |",
            "| breaker | x | `kit::breaker::tests::closes_again`, `kit::retry::tests`, `services/shop/tests/journey.rs` (`twice`, `thrice`) |",
        ]);
        assert_eq!(
            summary.problems,
            [
                "README.md:7: saga: `services/shop/tests/journey.rs::a_renamed_test`: \
                 services/shop/tests/journey.rs has no `fn a_renamed_test`",
                "README.md:7: saga: `services/shop/tests/journey.rs::gone`: \
                 services/shop/tests/journey.rs has no `fn gone`",
                "README.md:7: saga: `services/shop/tests/crash.rs` does not exist",
                "README.md:8: breaker: `kit::breaker::tests::closes_again`: module \
                 kit::breaker::tests has no `fn closes_again`",
                "README.md:8: breaker: `kit::retry::tests`: kit has no module retry",
                "README.md:8: breaker: `services/shop/tests/journey.rs::thrice`: \
                 services/shop/tests/journey.rs has no `fn thrice`",
            ]
        );
    }

    #[test]
    fn a_readme_without_the_map_is_an_error() {
        let tree = Tree::new("missing");
        tree.file("README.md", "# Shop\n");
        let err = check(&tree.0).unwrap_err();
        assert!(
            err.to_string().contains("no `## Pattern map` table"),
            "{err}"
        );
    }
}
