//! A fresh namespace per test.

use crate::wait::wait_for;
use crate::{dump, ENV_KEEP};
use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, DynamicObject, ObjectMeta, PostParams};
use kube::{Api, Client, Config, Resource, ResourceExt};
use std::collections::BTreeMap;
use std::time::Duration;

/// Label put on every test namespace (value `"true"`), to find leftovers:
/// `kubectl delete ns -l fabricwatch.io/test=true`.
pub const TEST_LABEL: &str = "fabricwatch.io/test";

/// A namespace created for one test, with a unique name (`<prefix>-<random>`).
///
/// It is deleted by [`TestNamespace::cleanup`] or, failing that, when dropped. When the test
/// panics, the drop prints a dump of the namespace (pods, their logs, events) to stderr
/// first. With `FABRICWATCH_KEEP=1` the namespace is kept for inspection.
pub struct TestNamespace {
    name: String,
    client: Client,
    config: Config,
    keep: bool,
    done: bool,
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

/// A DNS label from a test name: lower case, `[a-z0-9-]`, at most 40 characters.
fn sanitize(prefix: &str) -> String {
    let mut s: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.truncate(40);
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "test".to_string()
    } else {
        s
    }
}

fn keep_requested() -> bool {
    std::env::var(ENV_KEEP)
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

impl TestNamespace {
    /// Create a namespace `<prefix>-<random>` and wait until pods can be created in it (its
    /// `default` ServiceAccount exists and, before Kubernetes 1.24, has its token Secret).
    pub async fn create(client: Client, config: Config, prefix: &str) -> Result<TestNamespace> {
        Self::create_with(client, config, prefix, true).await
    }

    /// Like [`TestNamespace::create`], without waiting for pods to be possible: for tests that
    /// only write API objects (the token controller can be minutes behind after thousands of
    /// ServiceAccounts).
    pub async fn create_for_objects(
        client: Client,
        config: Config,
        prefix: &str,
    ) -> Result<TestNamespace> {
        Self::create_with(client, config, prefix, false).await
    }

    async fn create_with(
        client: Client,
        config: Config,
        prefix: &str,
        for_pods: bool,
    ) -> Result<TestNamespace> {
        let api: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", sanitize(prefix))),
                labels: Some(BTreeMap::from([(
                    TEST_LABEL.to_string(),
                    "true".to_string(),
                )])),
                ..Default::default()
            },
            ..Default::default()
        };
        let created = api
            .create(&PostParams::default(), &ns)
            .await
            .context("creating the test namespace")?;
        let name = created.name_any();
        let test_ns = TestNamespace {
            name: name.clone(),
            client: client.clone(),
            config,
            keep: keep_requested(),
            done: false,
        };
        if !for_pods {
            eprintln!("fabricwatch-tests: namespace {name}");
            return Ok(test_ns);
        }
        let minor: u32 = client
            .apiserver_version()
            .await
            .map(|v| {
                v.minor
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .ok()
            .and_then(|m| m.parse().ok())
            .unwrap_or(99);
        let needs_token = minor < 24;
        let sas: Api<ServiceAccount> = Api::namespaced(client, &name);
        wait_for(
            &sas,
            "default",
            move |sa: Option<&ServiceAccount>| {
                sa.is_some_and(|sa| {
                    !needs_token || sa.secrets.as_ref().is_some_and(|s| !s.is_empty())
                })
            },
            Duration::from_secs(60),
        )
        .await
        .context("waiting for the test namespace's default ServiceAccount")?;
        eprintln!("fabricwatch-tests: namespace {name}");
        Ok(test_ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A client (clone of the one the namespace was made with).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// An `Api` for a namespaced resource type in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Server-side apply one or more YAML documents; namespaced objects without a
    /// namespace go into this namespace. See [`crate::apply_yaml`].
    pub async fn apply_yaml(&self, yaml: &str) -> Result<Vec<DynamicObject>> {
        crate::apply::apply_yaml(&self.client, Some(&self.name), yaml).await
    }

    /// A readable dump of everything in the namespace (workloads, pods with their
    /// container states and log tails, events) and of the fabricwatch component pods
    /// elsewhere (see [`dump::component_selector`]).
    pub async fn dump(&self) -> String {
        format!(
            "{}{}",
            dump::dump_namespace(&self.client, &self.name).await,
            dump::dump_components(&self.client, Some(&self.name)).await
        )
    }

    /// Delete the namespace now (unless `FABRICWATCH_KEEP=1`). Does not wait for the
    /// namespace to be gone.
    pub async fn cleanup(mut self) -> Result<()> {
        self.done = true;
        if self.keep {
            eprintln!(
                "fabricwatch-tests: keeping namespace {} ({ENV_KEEP}=1)",
                self.name
            );
            return Ok(());
        }
        delete_namespace(&self.client, &self.name).await
    }
}

async fn delete_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("deleting namespace {name}")),
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let panicking = std::thread::panicking();
        let (name, keep, config) = (self.name.clone(), self.keep, self.config.clone());
        // The test's runtime may be gone or blocked on us: use a thread with its own runtime
        // and its own client.
        let worker = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("fabricwatch-tests: cannot clean up namespace {name}: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let client = match Client::try_from(config) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("fabricwatch-tests: cannot clean up namespace {name}: {e}");
                        return;
                    }
                };
                if panicking {
                    eprintln!(
                        "==== the test panicked; namespace {name} ====\n{}{}",
                        dump::dump_namespace(&client, &name).await,
                        dump::dump_components(&client, Some(&name)).await
                    );
                }
                if keep {
                    eprintln!("fabricwatch-tests: keeping namespace {name} ({ENV_KEEP}=1)");
                } else if let Err(e) = delete_namespace(&client, &name).await {
                    eprintln!("fabricwatch-tests: {e:#}");
                }
            });
        });
        let _ = worker.join();
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn sanitize_makes_dns_labels() {
        assert_eq!(
            sanitize("cluster::daemonset_HostNet"),
            "cluster--daemonset-hostnet"
        );
        assert_eq!(sanitize("__"), "test");
        assert_eq!(sanitize(&"a".repeat(80)).len(), 40);
    }
}
