//! The one layering every service follows, checked on the source: the `crate::…` paths each
//! top-level module of `services/*/src` uses.
//!
//! ```text
//! grpc ──► service ──► store ──► domain
//!   │         │   └──► events ─┘    ▲
//!   └─────────┴────────────────────┘
//! ```
//!
//! * `domain` is pure: it uses no other module of its crate (no store, no I/O);
//! * `store` holds all SQL and depends on neither the API (`grpc`), the service layer nor
//!   `events` (events are handed to it built, see each store's module docs);
//! * no module depends on `grpc`, which only decodes, calls the service layer and encodes;
//! * and, whatever else a crate does, its top-level modules form no cycle.
//!
//! A cycle between modules is how a crate stops having layers: once `store` calls `events` and
//! `events` calls `store`, neither can be read, tested or replaced alone.

#[cfg(test)]
mod tests {
    use std::{
        collections::{BTreeMap, BTreeSet},
        fs,
        path::{Path, PathBuf},
    };

    /// Module → the crate modules it uses.
    type Graph = BTreeMap<String, BTreeSet<String>>;

    fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, files);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }

    /// The top-level module a file belongs to: `store/catalog.rs` → `store`, `grpc.rs` → `grpc`.
    fn module_of(src: &Path, file: &Path) -> Option<String> {
        let relative = file.strip_prefix(src).ok()?;
        let first = relative.components().next()?.as_os_str().to_str()?;
        let name = first.trim_end_matches(".rs");
        (!matches!(name, "lib" | "main")).then(|| name.to_owned())
    }

    /// The modules `text` names as `crate::<module>` (also inside `use crate::{a, b::{C, D}}`),
    /// outside comments and tests.
    fn uses(text: &str) -> BTreeSet<String> {
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut found = BTreeSet::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or_default();
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    found.extend(top_level_items(group));
                    continue;
                }
                let name = identifier(rest);
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
        found
    }

    /// The first identifier of each item of a `{a, b::{C, D}, e}` group, at its own depth.
    fn top_level_items(group: &str) -> Vec<String> {
        let mut items = Vec::new();
        let mut depth = 0;
        let mut at_item_start = true;
        for (index, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => at_item_start = true,
                c if at_item_start && depth == 0 && !c.is_whitespace() => {
                    at_item_start = false;
                    let name = identifier(&group[index..]);
                    if !name.is_empty() {
                        items.push(name);
                    }
                }
                _ => {}
            }
        }
        items
    }

    fn identifier(text: &str) -> String {
        text.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    }

    /// Multi-line `use crate::{ … };` blocks, joined onto one line so [`uses`] sees them.
    fn joined(text: &str) -> String {
        let mut out = String::new();
        let mut in_block = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if in_block {
                out.push(' ');
                out.push_str(trimmed);
                if trimmed.contains("};") {
                    in_block = false;
                    out.push('\n');
                }
            } else if trimmed.starts_with("use crate::{") && !trimmed.contains("};") {
                in_block = true;
                out.push_str(trimmed);
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn graph(src: &Path) -> Graph {
        let mut files = Vec::new();
        rust_files(src, &mut files);
        let mut graph = Graph::new();
        for file in files {
            let Some(module) = module_of(src, &file) else {
                continue;
            };
            let text = joined(&fs::read_to_string(&file).unwrap());
            let entry = graph.entry(module.clone()).or_default();
            for used in uses(&text) {
                if used != module {
                    entry.insert(used);
                }
            }
        }
        graph
    }

    /// A cycle through `graph`, if there is one.
    fn cycle(graph: &Graph) -> Option<Vec<String>> {
        fn visit(
            node: &str,
            graph: &Graph,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|seen| seen == node) {
                let mut found = path[at..].to_vec();
                found.push(node.to_owned());
                return Some(found);
            }
            if done.contains(node) {
                return None;
            }
            path.push(node.to_owned());
            for next in graph.get(node).into_iter().flatten() {
                if let Some(found) = visit(next, graph, path, done) {
                    return Some(found);
                }
            }
            path.pop();
            done.insert(node.to_owned());
            None
        }
        let mut done = BTreeSet::new();
        graph
            .keys()
            .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
    }

    /// Every broken rule of one crate, as sentences.
    fn problems(name: &str, graph: &Graph) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(found) = cycle(graph) {
            problems.push(format!(
                "{name}: modules form a cycle: {}",
                found.join(" → ")
            ));
        }
        for (module, used) in graph {
            let forbidden: &[&str] = match module.as_str() {
                "domain" => &["store", "service", "events", "grpc", "config", "error"],
                "store" => &["grpc", "service", "events"],
                _ => &["grpc"],
            };
            for bad in forbidden {
                if used.contains(*bad) {
                    problems.push(format!("{name}: `{module}` uses `crate::{bad}`"));
                }
            }
        }
        problems
    }

    fn services() -> Vec<(String, PathBuf)> {
        let root = crate::deploy_check::workspace_root().join("services");
        let mut found: Vec<_> = fs::read_dir(root)
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.join("src/lib.rs").is_file())
            .map(|path| {
                (
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    path.join("src"),
                )
            })
            .collect();
        found.sort();
        found
    }

    #[test]
    fn every_service_keeps_its_layers_and_has_no_module_cycle() {
        let mut all = Vec::new();
        for (name, src) in services() {
            if name == "gateway" {
                continue; // an HTTP edge: no store, no domain layer of its own
            }
            all.extend(problems(&name, &graph(&src)));
        }
        assert!(all.is_empty(), "{}", all.join("\n"));
    }

    #[test]
    fn a_cycle_and_a_layer_breach_are_reported() {
        let graph: Graph = [
            ("store", vec!["events", "domain"]),
            ("events", vec!["store"]),
            ("domain", vec!["store"]),
            ("service", vec!["grpc"]),
        ]
        .into_iter()
        .map(|(module, used)| {
            (
                module.to_owned(),
                used.into_iter().map(str::to_owned).collect(),
            )
        })
        .collect();
        let found = problems("shop", &graph);
        assert!(found[0].contains("cycle"), "{found:?}");
        assert!(
            found
                .iter()
                .any(|p| p == "shop: `store` uses `crate::events`")
        );
        assert!(
            found
                .iter()
                .any(|p| p == "shop: `domain` uses `crate::store`")
        );
        assert!(
            found
                .iter()
                .any(|p| p == "shop: `service` uses `crate::grpc`")
        );
    }

    #[test]
    fn uses_are_read_from_single_and_multi_line_imports() {
        let text = joined(
            "use crate::{\n    domain::Sku,\n    store::{A, B},\n};\nuse crate::events;\n\
             // crate::grpc in a comment\nfn f() { crate::service::go(); }\n",
        );
        let found: Vec<String> = uses(&text).into_iter().collect();
        assert_eq!(found, ["domain", "events", "service", "store"]);
    }
}
