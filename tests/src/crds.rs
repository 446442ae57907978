//! Installing the project's CustomResourceDefinitions (`crds/*.yaml`).

use crate::apply::parse_yaml_documents;
use crate::cluster::repo_root;
use crate::conditions::is_crd_established;
use crate::wait::wait_for;
use crate::FIELD_MANAGER;
use anyhow::{anyhow, Context, Result};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use std::path::PathBuf;
use std::time::Duration;

/// The folder of CRDs for an API server of minor version `minor` (as `/version` reports it,
/// e.g. `20` or `27+`): `crds/`, or `crds/kubernetes-1.20-1.22/` (the same CRDs without
/// `x-kubernetes-validations`) for servers older than 1.23, which reject the field on
/// server-side apply. An unparsable version counts as current.
pub fn crd_dir_for(minor: &str) -> PathBuf {
    let digits: String = minor.chars().take_while(char::is_ascii_digit).collect();
    let crds = repo_root().join("crds");
    match digits.parse::<u32>() {
        Ok(m) if m < 23 => crds.join(fabricwatch_crds::crd::WITHOUT_CEL_DIR),
        _ => crds,
    }
}

/// [`crd_dir_for`] the server `client` talks to.
pub async fn crd_dir(client: &Client) -> Result<PathBuf> {
    let info = client
        .apiserver_version()
        .await
        .context("reading the API server version")?;
    Ok(crd_dir_for(&info.minor))
}

/// The YAML files in `dir` (`*.yaml`, `*.yml`), sorted.
pub fn crd_files(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let is_yaml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yaml" || e == "yml");
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Server-side apply every CustomResourceDefinition found in `crds/*.yaml` (the
/// `kubernetes-1.20-1.22` set on older servers, see [`crd_dir_for`]; other kinds in those
/// files are skipped with a note) and wait until each is Established. Returns the CRD names.
/// Safe to call from many tests at once.
pub async fn install_crds(client: &Client) -> Result<Vec<String>> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    let dir = crd_dir(client).await?;
    let files = crd_files(&dir)?;
    if files.is_empty() {
        eprintln!("fabricwatch-tests: no CRD files in {}", dir.display());
    }
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        for doc in
            parse_yaml_documents(&text).with_context(|| format!("parsing {}", file.display()))?
        {
            if doc.get("kind").and_then(|k| k.as_str()) != Some("CustomResourceDefinition") {
                eprintln!(
                    "fabricwatch-tests: {}: skipping a {} (not a CRD)",
                    file.display(),
                    doc.get("kind")
                        .and_then(|k| k.as_str())
                        .unwrap_or("document without kind")
                );
                continue;
            }
            let name = doc
                .pointer("/metadata/name")
                .and_then(|n| n.as_str())
                .ok_or_else(|| anyhow!("{}: a CRD has no metadata.name", file.display()))?
                .to_string();
            api.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&doc),
            )
            .await
            .with_context(|| format!("applying CRD {name} from {}", file.display()))?;
            names.push(name);
        }
    }
    for name in &names {
        wait_for(&api, name, is_crd_established(), Duration::from_secs(60)).await?;
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_servers_get_the_crds_without_cel() {
        let legacy = repo_root()
            .join("crds")
            .join(fabricwatch_crds::crd::WITHOUT_CEL_DIR);
        for minor in ["20", "21+", "22"] {
            assert_eq!(crd_dir_for(minor), legacy, "{minor}");
        }
        for minor in ["23", "25", "33+", "", "x"] {
            assert_eq!(crd_dir_for(minor), repo_root().join("crds"), "{minor}");
        }
        for dir in [legacy, repo_root().join("crds")] {
            let files = crd_files(&dir).expect("list");
            assert_eq!(files.len(), 3, "{}", dir.display());
        }
    }
}
