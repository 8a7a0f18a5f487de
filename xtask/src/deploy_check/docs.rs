//! Links and references in the repository's text must resolve inside the repository.
//!
//! A reader who follows a link, a "see `<path>`" or a `docs/…` path in a comment must find
//! what it names in this checkout. Checked, offline:
//!
//! | where | what |
//! |---|---|
//! | Markdown files | every relative link and image (`[text](path)`, `[label]: path`), resolved against the file's directory (or the repository root for `/path`); a `#fragment` on a Markdown target must be the GitHub slug of one of its headings, a bare `#fragment` one of the file's own |
//! | Markdown; comments of Rust; every line of YAML, TOML, Terraform, SQL, proto and shell files, the Dockerfile and `.ci/` | every word naming a Markdown file (`docs/deployment.md`, with or without a fragment) and every "see `path`" whose path names a file; resolved against the file's directory, then each parent directory up to the repository root |
//! | the same | a `§` section number is only allowed right after an RFC number ("RFC 9457 §3"); any other section of a document must be named by a heading |
//!
//! A path that leaves the repository (`../…` above the root) is reported even if it exists.
//! External `http(s)://` links are not checked: the gate runs offline.
//!
//! Skipped: `target/`, `node_modules/`, hidden directories other than `.github`, `.ci` and
//! `.cargo` (tool caches, virtual environments, Terraform working directories), and the
//! `migrations/` directories. Applied migrations are immutable: sqlx stores a checksum of each
//! file and refuses to start against a database where an edited one was applied, so their
//! comments stay as they were written.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Component, Path, PathBuf},
};

use anyhow::Context as _;

/// Extensions of the files scanned besides Markdown (Rust: its comments; the others: every line).
const SCANNED: &[&str] = &[
    "rs", "toml", "yaml", "yml", "tf", "hcl", "sql", "proto", "sh",
];

/// Extensions that make a "see `…`" name a file.
const FILE_EXTENSIONS: &[&str] = &[
    "rs", "md", "toml", "yaml", "yml", "json", "sql", "proto", "sh", "tf", "hcl", "txt", "lock",
    "html", "js", "css",
];

/// Hidden directories that hold the project's own files.
const HIDDEN_SOURCES: &[&str] = &[".github", ".ci", ".cargo"];

/// One reference that does not resolve, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Relative to the repository root, `/`-separated.
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// What a run looked at.
#[derive(Debug, Default)]
pub struct Summary {
    pub files: usize,
    pub references: usize,
    pub problems: Vec<Problem>,
}

/// Checks every file under `root`.
pub fn check(root: &Path) -> anyhow::Result<Summary> {
    let mut files = Vec::new();
    collect(root, &mut files)?;
    let mut checker = Checker {
        root: root.to_path_buf(),
        headings: BTreeMap::new(),
    };
    let mut summary = Summary::default();
    for file in &files {
        let text =
            fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let references = references_in(file, &text);
        summary.files += 1;
        summary.references += references.len();
        for reference in references {
            if let Some(message) = checker.verify(file, &reference)? {
                summary.problems.push(Problem {
                    file: relative(root, file),
                    line: reference.line,
                    message,
                });
            }
        }
    }
    Ok(summary)
}

/// The files to check: Markdown and the scanned kinds, outside the skipped directories.
fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() {
            let hidden = name.starts_with('.') && !HIDDEN_SOURCES.contains(&name.as_str());
            if hidden || name == "target" || name == "node_modules" || name == "migrations" {
                continue;
            }
            collect(&path, files)?;
        } else if kind(&path).is_some() {
            files.push(path);
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Markdown,
    /// Rust: only comments are prose.
    Rust,
    /// Configuration and scripts: comments and values alike.
    Text,
}

fn kind(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_str()?;
    if name == "Dockerfile"
        || path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|dir| dir == ".ci")
    {
        return Some(Kind::Text);
    }
    match path.extension()?.to_str()? {
        "md" => Some(Kind::Markdown),
        "rs" => Some(Kind::Rust),
        ext if SCANNED.contains(&ext) => Some(Kind::Text),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A Markdown link or image: relative to the file (or `/`: to the root), exactly.
    Link(String),
    /// A path named in prose: relative to the file's directory or any parent.
    Mention(String),
    /// A `§` that is not an RFC's.
    Section(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    line: usize,
    target: Target,
}

/// Every reference in one file's text.
fn references_in(path: &Path, text: &str) -> Vec<Reference> {
    let Some(kind) = kind(path) else {
        return Vec::new();
    };
    let mut references = Vec::new();
    let mut fenced = false;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let prose = match kind {
            Kind::Markdown => {
                let trimmed = line.trim_start();
                if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                    fenced = !fenced;
                    continue;
                }
                if fenced {
                    continue;
                }
                for link in markdown_links(line) {
                    references.push(Reference {
                        line: number,
                        target: Target::Link(link),
                    });
                }
                // Links were checked as links; the prose around them is checked for mentions.
                without_links(line)
            }
            Kind::Rust => match rust_comment(line) {
                Some(comment) => comment.to_owned(),
                None => continue,
            },
            Kind::Text => line.to_owned(),
        };
        let prose = without_urls(&prose);
        for mention in mentions(&prose) {
            references.push(Reference {
                line: number,
                target: Target::Mention(mention),
            });
        }
        for section in sections(&prose) {
            references.push(Reference {
                line: number,
                target: Target::Section(section),
            });
        }
    }
    references
}

/// The comment on a Rust line, if any: a line comment, or what follows `//` after code. A `//`
/// inside a string literal is not a comment.
fn rust_comment(line: &str) -> Option<&str> {
    let mut in_string = false;
    let mut escaped = false;
    let bytes = line.as_bytes();
    for (index, &byte) in bytes.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if byte == b'/' && bytes.get(index + 1) == Some(&b'/') {
            return Some(&line[index..]);
        }
    }
    None
}

/// The text with every `scheme://…` URL blanked out, so that its path is not taken for a
/// repository path.
fn without_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = rest[..at]
            .rfind(|c: char| !c.is_ascii_alphanumeric() && c != '+' && c != '-' && c != '.')
            .map_or(0, |i| i + 1);
        out.push_str(&rest[..start]);
        let after = &rest[at + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '>' | '"' | '\'' | '`' | ']'))
            .unwrap_or(after.len());
        out.push(' ');
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Destinations of the Markdown links and images on one line, outside code spans, and of a
/// reference definition (`[label]: destination`).
fn markdown_links(line: &str) -> Vec<String> {
    let text = without_code_spans(line);
    let mut links = Vec::new();
    let trimmed = text.trim_start();
    if trimmed.starts_with('[')
        && let Some(close) = trimmed.find("]:")
        && !trimmed[..close].contains('(')
    {
        if let Some(destination) = trimmed[close + 2..].split_whitespace().next() {
            links.push(destination.trim_matches(['<', '>']).to_owned());
        }
        return links;
    }
    let mut rest = text.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        let inside = after[..end].trim();
        let destination = if let Some(angled) = inside.strip_prefix('<') {
            angled.split('>').next().unwrap_or_default()
        } else {
            inside.split_whitespace().next().unwrap_or_default()
        };
        if !destination.is_empty() {
            links.push(destination.to_owned());
        }
        rest = &after[end..];
    }
    links
}

/// The line with the contents of its code spans removed (links inside them are examples).
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for (index, part) in line.split('`').enumerate() {
        if index % 2 == 0 {
            out.push_str(part);
        } else {
            out.push(' ');
        }
    }
    out
}

/// The line with every Markdown link (`[text](destination)`, images too) and reference
/// definition removed.
fn without_links(line: &str) -> String {
    if line.trim_start().starts_with('[') && line.contains("]:") && !line.contains("](") {
        return String::new();
    }
    let mut out = line.to_owned();
    while let Some(middle) = out.find("](") {
        let (Some(open), Some(close)) = (
            out[..middle].rfind('['),
            out[middle..].find(')').map(|i| middle + i),
        ) else {
            break;
        };
        out.replace_range(open..=close, " ");
    }
    out
}

/// Words naming a Markdown file, and the paths of "see `…`", in the order they appear.
fn mentions(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut start = 0;
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || "_./#-".contains(c))) {
        let at = start;
        start += word.len() + 1;
        let word = word.trim_end_matches(['.', ',', ':', ';', '-']);
        let path = word.split('#').next().unwrap_or_default();
        let stem = path.rsplit('/').next().unwrap_or_default();
        if stem.len() > ".md".len() && stem.ends_with(".md") {
            found.push((at, word.to_owned()));
        }
    }
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("see `") {
        let begin = from + at + "see `".len();
        let Some(len) = text[begin..].find('`') else {
            break;
        };
        let named = &text[begin..begin + len];
        if names_a_file(named) && !named.ends_with(".md") {
            found.push((begin, named.to_owned()));
        }
        from = begin + len;
    }
    found.sort();
    found.into_iter().map(|(_, mention)| mention).collect()
}

/// Whether "see `named`" points at a file (rather than a module, a command or a setting).
fn names_a_file(named: &str) -> bool {
    if named.is_empty()
        || named.contains("::")
        || named.contains(|c: char| c.is_whitespace() || "<>{}*$(),".contains(c))
    {
        return false;
    }
    let last = named
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(named);
    let extension = last.rsplit_once('.').map(|(_, ext)| ext);
    named.contains('/')
        || last.starts_with('.')
        || extension.is_some_and(|ext| FILE_EXTENSIONS.contains(&ext))
}

/// Section signs followed by a number that do not follow an RFC number.
fn sections(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, sign) in text.match_indices('§') {
        let numbered = text[at + sign.len()..]
            .trim_start()
            .starts_with(|c: char| c.is_ascii_digit());
        let before: Vec<&str> = text[..at]
            .split_whitespace()
            .rev()
            .take(2)
            .map(|word| word.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
            .collect();
        let cites_rfc = matches!(before.as_slice(), [number, rfc]
            if rfc.eq_ignore_ascii_case("RFC") && number.chars().all(|c| c.is_ascii_digit()));
        if numbered && !cites_rfc {
            let number: String = text[at + sign.len()..]
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let section = format!("§{}", number.trim_end_matches('.'));
            found.push(section);
        }
    }
    found
}

struct Checker {
    root: PathBuf,
    /// Heading slugs per Markdown file, read once.
    headings: BTreeMap<PathBuf, BTreeSet<String>>,
}

impl Checker {
    /// `None` when the reference resolves, else why not.
    fn verify(&mut self, file: &Path, reference: &Reference) -> anyhow::Result<Option<String>> {
        let dir = file.parent().unwrap_or(&self.root);
        match &reference.target {
            Target::Section(section) => Ok(Some(format!(
                "{section:?}: name the section by a heading of a file in the repository \
                 (docs/<file>.md#<heading>); only RFC sections are cited by number"
            ))),
            Target::Link(link) => {
                if let Some(fragment) = link.strip_prefix('#') {
                    return self.fragment(file, fragment, link);
                }
                if has_scheme(link) {
                    return Ok(None);
                }
                let (path, fragment) = split_fragment(link);
                let path = path.split('?').next().unwrap_or_default();
                let base = if path.starts_with('/') {
                    self.root.clone()
                } else {
                    dir.to_path_buf()
                };
                let Some(target) = within(&self.root, &base.join(path.trim_start_matches('/')))
                else {
                    return Ok(Some(format!("{link:?} points outside the repository")));
                };
                if !target.exists() {
                    return Ok(Some(format!(
                        "{link:?}: {} does not exist",
                        self.show(&target)
                    )));
                }
                match fragment {
                    Some(fragment) if is_markdown(&target) => {
                        self.fragment(&target, fragment, link)
                    }
                    _ => Ok(None),
                }
            }
            Target::Mention(mention) => {
                let (path, fragment) = split_fragment(mention);
                let mut escaped = false;
                let mut bases = vec![dir.to_path_buf()];
                if file.extension().is_some_and(|ext| ext == "rs") {
                    // `foo.rs` names its submodules' files relative to `foo/`.
                    bases.push(file.with_extension(""));
                }
                bases.extend(
                    dir.ancestors()
                        .skip(1)
                        .take_while(|d| d.starts_with(&self.root))
                        .map(Path::to_path_buf),
                );
                for base in bases {
                    match within(&self.root, &base.join(path)) {
                        None => escaped = true,
                        Some(target) if target.exists() => {
                            return match fragment {
                                Some(fragment) if is_markdown(&target) => {
                                    self.fragment(&target, fragment, mention)
                                }
                                _ => Ok(None),
                            };
                        }
                        Some(_) => {}
                    }
                }
                Ok(Some(if escaped && path.starts_with("..") {
                    format!("{mention:?} points outside the repository")
                } else {
                    format!(
                        "{mention:?} names no file of the repository (looked in {} and its \
                         parent directories)",
                        self.show(dir)
                    )
                }))
            }
        }
    }

    fn fragment(
        &mut self,
        target: &Path,
        fragment: &str,
        written: &str,
    ) -> anyhow::Result<Option<String>> {
        if !self.headings.contains_key(target) {
            let text = fs::read_to_string(target)
                .with_context(|| format!("cannot read {}", target.display()))?;
            self.headings
                .insert(target.to_path_buf(), heading_slugs(&text));
        }
        let known = &self.headings[target];
        Ok(if known.contains(&fragment.to_lowercase()) {
            None
        } else {
            Some(format!(
                "{written:?}: {} has no heading #{fragment} (its headings: {})",
                self.show(target),
                known
                    .iter()
                    .map(|slug| format!("#{slug}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
        })
    }

    fn show(&self, path: &Path) -> String {
        relative(&self.root, path)
    }
}

fn has_scheme(link: &str) -> bool {
    link.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    })
}

fn split_fragment(reference: &str) -> (&str, Option<&str>) {
    match reference.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment)),
        None => (reference, None),
    }
}

fn is_markdown(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "md")
}

/// `path` with `.` and `..` resolved lexically, if it stays under `root`.
fn within(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !normal.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => normal.push(other.as_os_str()),
        }
    }
    normal.starts_with(root).then_some(normal)
}

fn relative(root: &Path, path: &Path) -> String {
    let shown = path.strip_prefix(root).unwrap_or(path);
    let text = shown.to_string_lossy().replace('\\', "/");
    if text.is_empty() {
        ".".to_owned()
    } else {
        text
    }
}

/// The anchors GitHub generates for a Markdown file's ATX headings (`#` … `######`, outside
/// fenced code): lower case, punctuation dropped except `-` and `_`, spaces to `-`; a repeated
/// heading gets `-1`, `-2`, … appended.
pub fn heading_slugs(text: &str) -> BTreeSet<String> {
    let mut slugs = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut fenced = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced || line.starts_with("    ") {
            continue;
        }
        let hashes = trimmed.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !trimmed[hashes..].starts_with([' ', '\t']) {
            continue;
        }
        let title = trimmed[hashes..].trim().trim_end_matches('#').trim_end();
        let base = slug(&link_texts(title));
        let count = seen.entry(base.clone()).or_insert(0);
        let slug = if *count == 0 {
            base.clone()
        } else {
            format!("{base}-{count}")
        };
        *count += 1;
        slugs.insert(slug);
    }
    slugs
}

/// `[text](destination)` → `text`, as GitHub slugs the rendered heading.
fn link_texts(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    let mut rest = title;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|i| open + i) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|i| close + i) else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn slug(title: &str) -> String {
    title
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch repository for one test, removed afterwards.
    struct Tree(PathBuf);

    impl Tree {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "ferroshop-docs-check-{name}-{}",
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

        fn problems(&self) -> Vec<String> {
            check(&self.0)
                .unwrap()
                .problems
                .iter()
                .map(ToString::to_string)
                .collect()
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn architecture() -> &'static str {
        concat!(
            "# Architecture\n\n## The checkout saga\n\n",
            "```text\n# not a heading\n```\n\n",
            "## Events: outbox, relay and inbox\n\n### The `shop.events` exchange\n\n",
            "## Notes\n\n## Notes\n",
        )
    }

    const HEADINGS: &str = "#architecture #events-outbox-relay-and-inbox #notes #notes-1 \
                            #the-checkout-saga #the-shopevents-exchange";

    #[test]
    fn slugs_follow_github() {
        let slugs = heading_slugs(architecture());
        let expected = [
            "architecture",
            "the-checkout-saga",
            "events-outbox-relay-and-inbox",
            "the-shopevents-exchange",
            "notes",
            "notes-1",
        ];
        assert_eq!(
            slugs,
            expected
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<BTreeSet<_>>()
        );
        assert_eq!(
            slug(&link_texts("The offline gate: `cargo xtask deploy-check`")),
            "the-offline-gate-cargo-xtask-deploy-check"
        );
        assert_eq!(
            slug(&link_texts("See [the saga](x.md) now")),
            "see-the-saga-now"
        );
    }

    #[test]
    fn a_consistent_tree_passes() {
        let tree = Tree::new("consistent");
        tree.file("docs/architecture.md", architecture())
            .file(
                "README.md",
                concat!(
                    "See [the saga](docs/architecture.md#the-checkout-saga), ",
                    "[events](./docs/architecture.md#events-outbox-relay-and-inbox), ",
                    "[notes](/docs/architecture.md#notes-1), [top](#readme) and ",
                    "[the web](https://example.com/missing.md).\n\n# Readme\n\n",
                    "```sh\ncat missing.md\n```\n[ref]: docs/architecture.md\n",
                ),
            )
            .file(
                "libs/a/src/lib.rs",
                concat!(
                    "//! See docs/architecture.md#the-checkout-saga, RFC 9457 §3, `store.rs`.\n",
                    "//! Module paths are not files: see `platform::entrypoint`.\n",
                    "mod store;\n",
                    "const URL: &str = \"see ARCHITECTURE.md\"; // the README.md of the root\n",
                ),
            )
            .file(
                "libs/a/src/store.rs",
                "//! see `store/queries.rs`; see `queries.rs`\nmod queries;\n",
            )
            .file("libs/a/src/store/queries.rs", "// see `.gitignore`\n")
            .file(".gitignore", "target/\n")
            .file("k8s/base/kustomization.yaml", "# see k8s/README.md\n")
            .file("k8s/README.md", "# Kubernetes\n")
            .file(
                "services/x/migrations/1_init.sql",
                "-- historical: ARCHITECTURE.md §2\n",
            )
            .file(".venv/lib/junk.md", "[broken](nowhere.md)\n")
            .file("target/debug/junk.md", "[broken](nowhere.md)\n");
        assert_eq!(tree.problems(), Vec::<String>::new());
    }

    #[test]
    fn every_kind_of_broken_reference_is_reported_with_its_place() {
        let tree = Tree::new("broken");
        tree.file("docs/architecture.md", architecture())
            .file(
                "README.md",
                concat!(
                    "The target architecture is in ",
                    "[the design](../design/OVERVIEW.md).\n",
                    "See [deployment](docs/deployment.md) and ",
                    "[the saga](docs/architecture.md#the-saga).\n",
                    "Back to [the top](#nowhere); the §3 invariants.\n",
                ),
            )
            .file(
                "services/orders/src/domain/saga.rs",
                concat!(
                    "//! The checkout saga as a pure state machine (ARCHITECTURE.md §3).\n",
                    "fn f() {} // see `policy.yaml` and docs/architecture.md#invariants\n",
                ),
            )
            .file(
                "infra/postgres/init.sql",
                "-- One database per service (ARCHITECTURE.md §4).\n",
            );
        let section = "name the section by a heading of a file in the repository \
                       (docs/<file>.md#<heading>); only RFC sections are cited by number";
        let saga_dir = "(looked in services/orders/src/domain and its parent directories)";
        assert_eq!(
            tree.problems(),
            [
                "README.md:1: \"../design/OVERVIEW.md\" points outside the repository".to_owned(),
                "README.md:2: \"docs/deployment.md\": docs/deployment.md does not exist".to_owned(),
                format!(
                    "README.md:2: \"docs/architecture.md#the-saga\": docs/architecture.md has \
                     no heading #the-saga (its headings: {HEADINGS})"
                ),
                "README.md:3: \"#nowhere\": README.md has no heading #nowhere (its headings: )"
                    .to_owned(),
                format!("README.md:3: \"§3\": {section}"),
                "infra/postgres/init.sql:1: \"ARCHITECTURE.md\" names no file of the \
                 repository (looked in infra/postgres and its parent directories)"
                    .to_owned(),
                format!("infra/postgres/init.sql:1: \"§4\": {section}"),
                format!(
                    "services/orders/src/domain/saga.rs:1: \"ARCHITECTURE.md\" names no file \
                     of the repository {saga_dir}"
                ),
                format!("services/orders/src/domain/saga.rs:1: \"§3\": {section}"),
                format!(
                    "services/orders/src/domain/saga.rs:2: \"policy.yaml\" names no file of \
                     the repository {saga_dir}"
                ),
                format!(
                    "services/orders/src/domain/saga.rs:2: \"docs/architecture.md#invariants\": \
                     docs/architecture.md has no heading #invariants (its headings: {HEADINGS})"
                ),
            ]
        );
    }

    #[test]
    fn a_mention_that_climbs_out_of_the_repository_is_reported() {
        let tree = Tree::new("outside");
        tree.file("docs/notes.md", "Read ../../notes/STYLE.md first.\n");
        assert_eq!(
            tree.problems(),
            ["docs/notes.md:1: \"../../notes/STYLE.md\" points outside the repository"]
        );
    }

    #[test]
    fn comments_are_told_from_strings_in_rust() {
        assert_eq!(rust_comment("let a = \"//x\"; // b"), Some("// b"));
        assert_eq!(rust_comment("let a = \"\\\"//\";"), None);
        assert_eq!(rust_comment("    //! doc"), Some("//! doc"));
        assert_eq!(
            without_urls("see https://a.b/c.md and x.md"),
            "see   and x.md"
        );
    }
}
