//! The repository's own docs stand alone: a user reads README.md and
//! docs/ without anything outside the repository (the README once sent
//! readers to `../shared/CONTRACT.md`, which users never have). Every
//! relative link must name a file in the repository, and the public
//! interface must be documented here.

use std::path::Path;

fn docs() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/ exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.strip_prefix(root).unwrap().display().to_string(), text)
        })
        .collect()
}

#[test]
fn docs_never_point_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, text) in docs() {
        assert!(
            !text.contains("../shared") && !text.contains("CONTRACT.md"),
            "{name} points outside the repository"
        );
        // Markdown links `](target)`: relative targets must exist.
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let target = &rest[..rest.find(')').unwrap_or(rest.len())];
            let target = target.split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let base = root.join(&name);
            let resolved = base.parent().unwrap().join(target);
            assert!(
                resolved.exists() && resolved.starts_with(root),
                "{name}: link to {target} does not name a file in the repository"
            );
        }
    }
}

#[test]
fn the_contract_is_in_the_repository() {
    let (_, contract) = docs()
        .into_iter()
        .find(|(n, _)| n.ends_with("contract.md"))
        .expect("docs/contract.md");
    for name in [
        "--svc-ports",
        "--icons-dir",
        "/api/graph",
        "/api/connections",
        "/api/events",
        "/metrics",
        "serverPort",
        "startTime",
        "processIconType",
        "addressDescription",
        "match_cmd",
        "Exit codes",
    ] {
        assert!(contract.contains(name), "docs/contract.md documents {name}");
    }
    let (_, readme) = docs().into_iter().next().unwrap();
    assert!(
        readme.contains("docs/contract.md"),
        "README links the contract"
    );
}
