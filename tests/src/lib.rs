//! Harness for tests against a real Kubernetes cluster.
