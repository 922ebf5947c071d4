"""Deploy/ renders with kustomize, validates against the Kubernetes schemas and passes checkov (with the findings a
node-level eBPF agent must accept annotated in the manifests). No root needed."""
import json
import os
import pathlib
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT, require

DEPLOY = ROOT / "Deploy"
ALLOWED_CAPABILITIES = {"BPF", "PERFMON", "NET_ADMIN", "NET_RAW", "SYS_RESOURCE", "SYS_PTRACE", "DAC_READ_SEARCH", "SYS_ADMIN"}


def render(overlay, tmp_path):
    require(shutil.which("kubectl"), "kubectl is not installed (Debian: kubernetes-client)")
    out = subprocess.run(["kubectl", "kustomize", str(overlay)], check=True, capture_output=True, text=True, timeout=60).stdout
    path = tmp_path / f"{overlay.name}.yaml"
    path.write_text(out)
    return path, [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


@pytest.fixture(params=["Deploy", "Deploy/capabilities"])
def rendered(request, tmp_path):
    return render(ROOT / request.param, tmp_path)


def test_schemas(rendered):
    require(shutil.which("kubernetes-validate"), "kubernetes-validate is not installed (pip install kubernetes-validate)")
    path, _ = rendered
    out = subprocess.run(["kubernetes-validate", "--strict", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_checkov_passes_with_annotated_exceptions(rendered):
    require(shutil.which("checkov"), "checkov is not installed (pip install checkov)")
    path, _ = rendered
    out = subprocess.run(["checkov", "-f", str(path), "--framework", "kubernetes", "-o", "json", "--compact"],
                         capture_output=True, text=True, timeout=300)
    report = json.loads(out.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [(c["check_id"], c["resource"]) for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    assert failed == [], failed
    passed = [c["check_id"] for r in reports for c in r.get("results", {}).get("passed_checks", [])]
    assert len(passed) > 20, f"checkov ran too few checks: {passed}"


def test_agent_shape(rendered):
    _, docs = rendered
    [ds] = by_kind(docs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    [agent] = pod["containers"]
    assert pod["tolerations"] == [{"operator": "Exists"}], "every node, tainted or not"
    assert pod["hostPID"] and pod["serviceAccountName"] == "fathom"
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in agent["env"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert agent[probe]["httpGet"]["path"] == "/healthz"
    mounts = {m["mountPath"] for m in agent["volumeMounts"]}
    assert {"/sys", "/sys/fs/bpf", "/sys/kernel/tracing", "/host/proc", "/var/lib/fathom"} <= mounts
    assert agent["resources"]["limits"]["memory"] and agent["resources"]["requests"]["cpu"]


def test_rbac_is_read_only(tmp_path):
    _, docs = render(DEPLOY, tmp_path)
    [role] = by_kind(docs, "ClusterRole")
    granted = {(group, resource) for rule in role["rules"] for group in rule["apiGroups"] for resource in rule["resources"]}
    assert granted == {("", "pods"), ("", "services"), ("", "namespaces"), ("", "nodes"), ("discovery.k8s.io", "endpointslices")}
    assert all(sorted(rule["verbs"]) == ["get", "list", "watch"] for rule in role["rules"])
    assert by_kind(docs, "ClusterRoleBinding")[0]["subjects"] == [{"kind": "ServiceAccount", "name": "fathom", "namespace": "fathom"}]


def test_capabilities_variant_is_not_privileged(tmp_path):
    _, docs = render(DEPLOY / "capabilities", tmp_path)
    [ds] = by_kind(docs, "DaemonSet")
    context = ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert context["privileged"] is False and context["capabilities"]["drop"] == ["ALL"]
    assert set(context["capabilities"]["add"]) <= ALLOWED_CAPABILITIES


def test_containerfile_copies_a_static_fathom():
    text = (DEPLOY / "Containerfile").read_text()
    assert "\nFROM debian:bookworm-slim\n" in text
    assert "COPY ${FATHOM} /usr/local/bin/fathom" in text and ".build-static/release/fathom" in text
