#!/usr/bin/env python3
"""Helm for fabricwatch's chart, with Helm's own code.

Uses the `helm` CLI when it is on PATH, else the PyPI package `helm-python-sdk` (import name
`helm_python`: Helm 4's Go SDK in a wheel), installed with pip on first use when missing.

    e2e/helm.py lint      [CHART] [-f values.yaml] [--set k=v]
    e2e/helm.py template  [CHART] [-f ...] [--set ...] [--release R] [-n NS] [--cluster]
                          [--crds-dir DIR]
    e2e/helm.py install   [CHART] [-f ...] [--set ...] [--release R] [-n NS] [--wait] [--timeout S]
                          [--crds-dir DIR]
    e2e/helm.py upgrade   [CHART] [-f ...] [--set ...] [--release R] [-n NS] [--wait] [--timeout S]
    e2e/helm.py uninstall [--release R] [-n NS] [--wait] [--timeout S]

CHART defaults to charts/fabricwatch. `template` prints the manifests (CRDs first, as Helm
installs them) to stdout; `--cluster` renders against the cluster of $KUBECONFIG, so
`.Capabilities` are the server's (e.g. policy/v1beta1 on Kubernetes 1.20). `lint` fails on
warnings too (strict). `--crds-dir DIR` installs (or renders) the chart with the CRDs of DIR
in place of its `crds/` (`crds/kubernetes-1.20-1.22` on API servers older than 1.23, which reject
CRDs carrying `x-kubernetes-validations` when Helm 4 applies them server-side).
`upgrade` takes the values in full, like `install` (nothing is reused from the release), and,
like Helm, leaves the CRDs alone. `--helm-cli`/`--sdk` force one implementation. Exit status 0 on
success, 1 on a Helm error (message on stderr), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CHART = REPO / "charts" / "fabricwatch"
SDK_REQUIREMENT = "helm-python-sdk==0.2.2"


class UsageError(Exception):
    """Bad command-line input."""


def sdk():
    """Imports helm_python, installing the pinned wheel with pip when it is missing."""
    try:
        return importlib.import_module("helm_python")
    except ImportError:
        pass
    print(f"helm.py: installing {SDK_REQUIREMENT}", file=sys.stderr)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", SDK_REQUIREMENT]
    if subprocess.run(cmd, check=False).returncode != 0:
        # Debian's system Python refuses pip without this flag (PEP 668).
        subprocess.run(cmd + ["--break-system-packages"], check=True)
    importlib.invalidate_caches()
    return importlib.import_module("helm_python")


def set_value(raw: str) -> Any:
    """A `--set` value typed as Helm types it (strvals' typedVal): `true`, `false`, `null` and
    integers without a leading zero; anything else, `yes` and `1.5` included, is a string.
    (PyYAML's YAML 1.1 rules would make `yes` a boolean, which the chart's schema rejects.)"""
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    if raw == "0" or (raw.lstrip("-")[:1] in "123456789" and raw.lstrip("-").isdigit()):
        return int(raw)
    return raw


def parse_set(pairs: list[str]) -> dict[str, Any]:
    """`a.b=c` pairs into nested dicts; values typed like Helm's `--set` ([`set_value`])."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {pair!r}: expected key=value")
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise UsageError(f"--set {pair!r}: {p} is already a value")
            node = nxt
        node[parts[-1]] = set_value(raw)
    return out


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge, `over` wins (Helm's order for -f files then --set)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def load_values(files: list[str], sets: list[str]) -> dict[str, Any]:
    if not files and not sets:
        return {}
    import yaml

    values: dict[str, Any] = {}
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                data = yaml.safe_load(fh) or {}
        except OSError as e:
            raise UsageError(f"-f {f}: {e.strerror}") from e
        except yaml.YAMLError as e:
            raise UsageError(f"-f {f}: not YAML: {e}") from e
        if not isinstance(data, dict):
            raise UsageError(f"-f {f}: expected a mapping at the top")
        values = merge(values, data)
    return merge(values, parse_set(sets))


def cli_args(a: argparse.Namespace) -> list[str]:
    out: list[str] = []
    for f in a.values:
        out += ["-f", f]
    for s in a.set:
        out += ["--set", s]
    return out


def run_cli(a: argparse.Namespace) -> int:
    helm = shutil.which("helm")
    assert helm is not None
    chart = str(a.chart)
    if a.cmd == "lint":
        cmd = [helm, "lint", "--strict", chart] + cli_args(a)
    elif a.cmd == "template":
        cmd = [helm, "template", a.release, chart, "-n", a.namespace, "--include-crds"] + cli_args(a)
        if a.cluster:
            cmd.append("--validate")
    elif a.cmd == "install":
        cmd = [helm, "install", a.release, chart, "-n", a.namespace, "--create-namespace"] + cli_args(a)
        if a.wait:
            cmd += ["--wait", "--timeout", f"{a.timeout}s"]
    elif a.cmd == "upgrade":
        # Values are given in full, as for install (no --reuse-values).
        cmd = [helm, "upgrade", a.release, chart, "-n", a.namespace] + cli_args(a)
        if a.wait:
            cmd += ["--wait", "--timeout", f"{a.timeout}s"]
    else:
        cmd = [helm, "uninstall", a.release, "-n", a.namespace, "--ignore-not-found"]
        if a.wait:
            cmd += ["--wait", "--timeout", f"{a.timeout}s"]
    return subprocess.run(cmd, check=False).returncode


def sorted_manifests(rendered: dict[str, str]) -> list[tuple[str, str]]:
    """Template outputs in file order, NOTES.txt and empty ones left out."""
    return [
        (path, text)
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt") and text.strip()
    ]


def config(h, a: argparse.Namespace):
    kubeconfig = os.environ.get("KUBECONFIG")
    return h.Config(kubeconfig_path=kubeconfig or None, namespace=a.namespace)


def run_sdk(a: argparse.Namespace) -> int:
    h = sdk()
    values = load_values(a.values, a.set) if a.cmd != "uninstall" else {}
    if a.cmd == "lint":
        report = h.lint(str(a.chart), values, strict=True, namespace=a.namespace)
        bad = 0
        for m in report.get("messages", []):
            level = {1: "INFO", 2: "WARNING", 3: "ERROR"}.get(m.get("severity"), "UNKNOWN")
            print(f"[{level}] {m.get('path')}: {m.get('error', '').strip()}")
            bad += m.get("severity", 0) >= 2
        print(f"{report.get('total_charts_linted', 0)} chart(s) linted, {bad} failed check(s)")
        return 1 if bad or report.get("errors") else 0
    if a.cmd == "template":
        with h.Chart.load(str(a.chart)) as chart:
            chart.validate_schema(values)
            for crd in chart.crds:
                data = crd["data"]
                text = data.decode() if isinstance(data, bytes) else str(data)
                print(f"---\n# Source: {crd['filename']}\n{text.strip()}")
            if a.cluster:
                # A server-side dry-run install renders with the server's .Capabilities
                # (Config.render would use Helm's defaults) and stores nothing.
                with config(h, a) as cfg:
                    rel = cfg.install(
                        chart, a.release, values, namespace=a.namespace, dry_run="server"
                    )
                print(str(rel.get("manifest", "")).strip())
                return 0
            rendered = chart.render(values, name=a.release, namespace=a.namespace, is_install=True)
        for path, text in sorted_manifests(rendered):
            print(f"---\n# Source: {path}\n{text.strip()}")
        return 0
    with config(h, a) as cfg:
        if a.cmd == "install":
            rel = cfg.install(
                str(a.chart),
                a.release,
                values,
                namespace=a.namespace,
                create_namespace=True,
                wait="watcher" if a.wait else None,
                timeout=a.timeout,
            )
            print(f"installed {a.release} in {a.namespace}: {rel.get('status', '?')}")
            if rel.get("notes"):
                print(rel["notes"])
        elif a.cmd == "upgrade":
            rel = cfg.upgrade(
                str(a.chart),
                a.release,
                values,
                namespace=a.namespace,
                wait="watcher" if a.wait else None,
                timeout=a.timeout,
            )
            print(f"upgraded {a.release} in {a.namespace}: {rel.get('status', '?')}")
        else:
            cfg.uninstall(
                a.release,
                ignore_not_found=True,
                wait="watcher" if a.wait else None,
                timeout=a.timeout,
            )
            print(f"uninstalled {a.release} from {a.namespace}")
    return 0


def with_crds(chart: Path, crds_dir: Path, tmp: str) -> Path:
    """A copy of `chart` under `tmp` whose crds/ holds the YAML files of `crds_dir`."""
    if not crds_dir.is_dir():
        raise UsageError(f"--crds-dir {crds_dir}: not a directory")
    copy = Path(tmp) / chart.name
    shutil.copytree(chart, copy, ignore=shutil.ignore_patterns("crds"))
    (copy / "crds").mkdir()
    for f in sorted(crds_dir.glob("*.yaml")):
        shutil.copy(f, copy / "crds" / f.name)
    return copy


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="helm.py", description=__doc__.split("\n\n")[0])
    p.add_argument("cmd", choices=["lint", "template", "install", "upgrade", "uninstall"])
    p.add_argument("chart", nargs="?", type=Path, default=DEFAULT_CHART)
    p.add_argument("-f", "--values", action="append", default=[], help="values file (repeatable)")
    p.add_argument("--set", action="append", default=[], help="key=value (repeatable)")
    p.add_argument("--release", default="fabricwatch")
    p.add_argument("-n", "--namespace", default="fabricwatch")
    p.add_argument("--wait", action="store_true", help="wait until the workloads are ready")
    p.add_argument("--timeout", type=int, default=300, help="seconds, with --wait")
    p.add_argument("--cluster", action="store_true", help="template: use the cluster's capabilities")
    p.add_argument("--crds-dir", type=Path, help="install, template: the CRDs of this directory instead of the chart's")
    impl = p.add_mutually_exclusive_group()
    impl.add_argument("--helm-cli", action="store_true", help="require the helm CLI")
    impl.add_argument("--sdk", action="store_true", help="use helm-python-sdk even if helm exists")
    a = p.parse_args(argv)
    if not (a.chart / "Chart.yaml").is_file():
        print(f"helm.py: {a.chart} is not a chart (no Chart.yaml)", file=sys.stderr)
        return 2
    use_cli = shutil.which("helm") is not None and not a.sdk
    if a.helm_cli and not use_cli:
        print("helm.py: --helm-cli given but no helm on PATH", file=sys.stderr)
        return 2
    try:
        if a.crds_dir is not None and a.cmd in ("install", "template"):
            import tempfile

            with tempfile.TemporaryDirectory(prefix="fabricwatch-chart-") as tmp:
                a.chart = with_crds(a.chart, a.crds_dir, tmp)
                return run_cli(a) if use_cli else run_sdk(a)
        return run_cli(a) if use_cli else run_sdk(a)
    except UsageError as e:
        print(f"helm.py: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # helm_python raises HelmError subclasses with the SDK's detail
        name = type(e).__name__
        if name.startswith("Helm"):
            print(f"helm.py: {a.cmd} failed: {name}: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
