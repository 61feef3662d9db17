//! `cargo xtask unused-deps`: every dependency a workspace crate declares must be named in its
//! sources, and every `[workspace.dependencies]` entry must be used by some crate.
//!
//! "Named" means, outside comments and string literals: `use dep`, `dep::` (not as the tail
//! of a longer path such as `crate::dep::`), `::dep::` or `extern crate dep`, with `-` in the
//! dependency's key read as `_`. `[dependencies]` and `[dev-dependencies]` are looked up in
//! every `.rs` file of the crate (and in files it includes with `#[path = "..."]`),
//! `[build-dependencies]` in `build.rs`. A dependency needed only for its side effects would
//! need an exception here; there is none today.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::util::{Failure, Res, fail, root};

pub fn run(args: &[String]) -> Res<()> {
    if !args.is_empty() {
        return Err(Failure::Usage("unused-deps takes no arguments".into()));
    }
    let root_manifest = read(&root().join("Cargo.toml"))?;
    let mut problems = Vec::new();
    let mut declared_anywhere = BTreeSet::new();
    let members = members(&root_manifest)?;
    for dir in &members {
        let manifest = read(&dir.join("Cargo.toml"))?;
        let rel = dir
            .strip_prefix(root())
            .unwrap_or(dir)
            .display()
            .to_string();
        let sections = dependencies(&manifest);
        let sources = rust_sources(dir);
        let text = sources
            .iter()
            .map(|p| strip_comments_and_strings(&std::fs::read_to_string(p).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n");
        let build = std::fs::read_to_string(dir.join("build.rs"))
            .map(|t| strip_comments_and_strings(&t))
            .unwrap_or_default();
        let mut n = 0;
        for (section, deps) in &sections {
            for dep in deps {
                declared_anywhere.insert(dep.clone());
                n += 1;
                let haystack = if section.ends_with("build-dependencies") {
                    &build
                } else {
                    &text
                };
                if !names_crate(haystack, &dep.replace('-', "_")) {
                    problems.push(format!(
                        "{rel}: `{dep}` is declared in [{section}] but its sources never name it \
                         (use {u}, {u}::, extern crate {u}): remove it from {rel}/Cargo.toml",
                        u = dep.replace('-', "_")
                    ));
                }
            }
        }
        eprintln!(
            "unused-deps: {rel}: {n} dependencies, {} source files",
            sources.len()
        );
    }
    for (section, deps) in dependencies(&root_manifest) {
        if section != "workspace.dependencies" {
            continue;
        }
        for dep in deps {
            if !declared_anywhere.contains(&dep) {
                problems.push(format!(
                    "Cargo.toml: `{dep}` is in [workspace.dependencies] but no crate uses it"
                ));
            }
        }
    }
    if problems.is_empty() {
        println!(
            "unused-deps: every dependency of the {} workspace crates is used",
            members.len()
        );
        return Ok(());
    }
    for p in &problems {
        println!("{p}");
    }
    fail(format!("{} unused dependencies", problems.len()))
}

fn read(path: &Path) -> Res<String> {
    std::fs::read_to_string(path).or_else(|e| fail(format!("read {}: {e}", path.display())))
}

/// The member directories of the root manifest's `members = [...]` (`dir/*` expanded to the
/// subdirectories holding a Cargo.toml), sorted.
fn members(manifest: &str) -> Res<Vec<PathBuf>> {
    let Some(line) = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
    else {
        return fail("no `members` in the root Cargo.toml");
    };
    let list = line
        .split_once('[')
        .and_then(|(_, r)| r.split_once(']'))
        .map(|(l, _)| l)
        .unwrap_or_default();
    let mut out = Vec::new();
    for item in list.split(',') {
        let item = item.trim().trim_matches('"');
        if item.is_empty() {
            continue;
        }
        if let Some(parent) = item.strip_suffix("/*") {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join(parent))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("Cargo.toml").is_file())
                .collect();
            dirs.sort();
            out.extend(dirs);
        } else {
            out.push(root().join(item));
        }
    }
    Ok(out)
}

/// The dependency keys of a manifest by section (`dependencies`, `dev-dependencies`,
/// `build-dependencies`, `target.'cfg(..)'.dependencies`, `workspace.dependencies`), from
/// `key = ...`, `key.workspace = true` lines and `[dependencies.key]` tables.
fn dependencies(manifest: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    let mut depth = 0i32; // open brackets/braces of a value spanning lines
    for raw in manifest.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if depth > 0 {
            depth += bracket_balance(line);
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let header = header.trim();
            // [dependencies.foo] / [target.x.dev-dependencies.foo]
            if let Some((table, dep)) = header.rsplit_once('.')
                && is_dep_section(table)
            {
                out.entry(table.to_string())
                    .or_default()
                    .push(dep.trim_matches('"').to_string());
                section = String::new();
            } else {
                section = header.to_string();
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        depth += bracket_balance(value);
        if is_dep_section(&section) {
            let key = key.trim().split('.').next().unwrap_or("").trim_matches('"');
            if !key.is_empty() {
                out.entry(section.clone())
                    .or_default()
                    .push(key.to_string());
            }
        }
    }
    out
}

fn is_dep_section(s: &str) -> bool {
    s == "dependencies"
        || s == "dev-dependencies"
        || s == "build-dependencies"
        || s == "workspace.dependencies"
        || s.starts_with("target.")
            && (s.ends_with(".dependencies")
                || s.ends_with(".dev-dependencies")
                || s.ends_with(".build-dependencies"))
}

/// Opening minus closing brackets and braces outside strings.
fn bracket_balance(s: &str) -> i32 {
    let mut in_str = false;
    let mut n = 0;
    for c in s.chars() {
        match c {
            '"' => in_str = !in_str,
            '[' | '{' if !in_str => n += 1,
            ']' | '}' if !in_str => n -= 1,
            _ => {}
        }
    }
    n
}

/// Every `.rs` file under `dir` (not `target/`), plus the files they include with
/// `#[path = "..."]`, sorted.
fn rust_sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir()
                && e.file_name() != "target"
                && !e.file_name().to_string_lossy().starts_with('.')
            {
                stack.push(p);
            } else if t.is_file() && p.extension().is_some_and(|x| x == "rs") {
                found.insert(p);
            }
        }
    }
    let mut todo: Vec<PathBuf> = found.iter().cloned().collect();
    while let Some(f) = todo.pop() {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for rest in text.split("#[path = \"").skip(1) {
            let Some(rel) = rest.split('"').next() else {
                continue;
            };
            let p = f.parent().unwrap_or(dir).join(rel);
            if p.is_file() && found.insert(p.clone()) {
                todo.push(p);
            }
        }
    }
    found.into_iter().collect()
}

/// `src` without comments, string literals and char literals (each replaced by a space), so
/// that only code is searched.
fn strip_comments_and_strings(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        let after_ident = i > 0 && is_ident(c[i - 1]);
        let skip_to = match c[i] {
            '/' if next == Some('/') => Some(
                c[i..]
                    .iter()
                    .position(|&x| x == '\n')
                    .map_or(c.len(), |p| i + p),
            ),
            '/' if next == Some('*') => Some(block_comment_end(&c, i)),
            'r' if !after_ident => raw_string_end(&c, i),
            '"' => Some(string_end(&c, i + 1)),
            '\'' => char_literal_end(&c, i),
            _ => None,
        };
        match skip_to {
            // a line comment stops at its newline, which is kept as code
            Some(j) => {
                out.push(' ');
                i = j.max(i + 1);
            }
            None => {
                out.push(c[i]);
                i += 1;
            }
        }
    }
    out
}

/// The index after the (nested) block comment starting at `i`.
fn block_comment_end(c: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i < c.len() {
        if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// The index after the raw string `r"..."` / `r#"..."#` starting at `i`, if one starts there.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if c.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < c.len() {
        if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

/// The index after the string whose contents start at `i` (after its opening quote).
fn string_end(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i] != '"' {
        if c[i] == '\\' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// The index after the char literal (`'x'`, `'\n'`, `'\''`) starting at `i`; `None` for a
/// lifetime or a label.
fn char_literal_end(c: &[char], i: usize) -> Option<usize> {
    if c.get(i + 1) == Some(&'\\') {
        let mut j = i + 3;
        while j < c.len() && c[j] != '\'' {
            j += 1;
        }
        return Some(j + 1);
    }
    (c.get(i + 2) == Some(&'\'')).then_some(i + 3)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether code (comments and strings stripped) names the crate `name`.
fn names_crate(code: &str, name: &str) -> bool {
    let mut from = 0;
    while let Some(pos) = code[from..].find(name) {
        let start = from + pos;
        let end = start + name.len();
        from = end;
        let before = &code[..start];
        let after = &code[end..];
        if before.chars().next_back().is_some_and(is_ident)
            || after.chars().next().is_some_and(is_ident)
        {
            continue;
        }
        let prev_word = before
            .trim_end()
            .rsplit(|c: char| !is_ident(c))
            .next()
            .unwrap_or("");
        let after = after.trim_start();
        if prev_word == "use" || before.trim_end().ends_with("extern crate") {
            return true;
        }
        if after.starts_with("::") {
            // `dep::x` or `::dep::x`, but not `crate::dep::x` / `self::dep::x`
            match before.strip_suffix("::") {
                None => return true,
                Some(b) if !b.chars().next_back().is_some_and(is_ident) => return true,
                Some(_) => {}
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_uses_and_ignores_comments_strings_and_longer_paths() {
        let code = strip_comments_and_strings(
            "use nix::sched; // libc::kill\nlet s = \"thiserror::Error\"; let c = '\\'';\n\
             /* serde::x */ fn f<'a>(x: &'a str) -> crate::ipnetwork::X { ::netlink_sys::y() }\n\
             extern crate boltdb;\nuse cni_spec as spec;\nlet r = r#\"json::x\"#;",
        );
        assert!(names_crate(&code, "nix"));
        assert!(!names_crate(&code, "libc"), "{code}");
        assert!(!names_crate(&code, "thiserror"));
        assert!(!names_crate(&code, "serde"));
        assert!(!names_crate(&code, "ipnetwork"));
        assert!(names_crate(&code, "netlink_sys"));
        assert!(names_crate(&code, "boltdb"));
        assert!(names_crate(&code, "cni_spec"));
        assert!(!names_crate(&code, "json"));
        assert!(!names_crate(&code, "sched"));
    }

    #[test]
    fn reads_dependency_sections() {
        let m = "[package]\nname = \"x\"\n\n[dependencies]\nserde.workspace = true\n\
                 nix = { workspace = true, features = [\n  \"fs\",\n] }\n# a comment\n\
                 ipconf = { path = \"../ipconf\" }\n\n[dev-dependencies]\nnetns-fixtures.workspace = true\n\
                 [build-dependencies.cc]\nversion = \"1\"\n[lints]\nworkspace = true\n";
        let d = dependencies(m);
        assert_eq!(d["dependencies"], ["serde", "nix", "ipconf"]);
        assert_eq!(d["dev-dependencies"], ["netns-fixtures"]);
        assert_eq!(d["build-dependencies"], ["cc"]);
        assert_eq!(d.len(), 3);
    }
}
