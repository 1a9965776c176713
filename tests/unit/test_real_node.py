"""The real node's build inputs: the kubelet's pins, the image cache key, the DNS file."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def gomod_pins(path: Path) -> tuple[list[str], list[str]]:
    """The require and replace lines of a go.mod (comments and the module line aside)."""
    text = path.read_text()
    requires = re.findall(r"^require (.+)$", text, re.M)
    block = re.search(r"^replace \($(.*?)^\)", text, re.M | re.S)
    assert block, f"{path} has no replace block"
    replaces = [line.strip() for line in block.group(1).splitlines() if line.strip()]
    return requires, replaces


def test_kubelet_is_built_from_the_control_planes_release() -> None:
    kubelet = gomod_pins(ROOT / "hack/tools/kubelet/go.mod")
    control_plane = gomod_pins(ROOT / "hack/tools/kubernetes/go.mod")
    assert kubelet == control_plane
    assert kubelet[0] == ["k8s.io/kubernetes v1.36.3"]
    assert "k8s.io/kubelet => k8s.io/kubelet v0.36.3" in kubelet[1]


def dockerfile_copy_sources() -> set[str]:
    sources: set[str] = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not line.startswith("COPY "):
            continue
        words = shlex.split(line)
        if any(w.startswith("--from") for w in words):
            continue
        sources.update(w.rstrip("/") for w in words[1:-1])
    return sources


def test_the_operator_image_key_hashes_everything_the_dockerfile_copies() -> None:
    script = (ROOT / "hack/images.sh").read_text()
    key_function = script.split("operator_key() {", 1)[1].split("\n}\n", 1)[0]
    hashed = set(re.findall(r"[\w.-]+", key_function.split("find", 1)[1].split("-type", 1)[0]))
    copied = dockerfile_copy_sources()
    assert copied, "no COPY line found in the Dockerfile"
    assert copied <= hashed, f"copied but not in the cache key: {copied - hashed}"
    assert "Dockerfile" in hashed


def load_dns() -> ModuleType:
    spec = importlib.util.spec_from_file_location("realnode_dns", ROOT / "hack/realnode_dns.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dns_names_every_service_with_a_cluster_ip() -> None:
    services = {
        "items": [
            {"metadata": {"name": "web", "namespace": "b"}, "spec": {"clusterIP": "10.0.0.20"}},
            {
                "metadata": {"name": "kubernetes", "namespace": "default"},
                "spec": {"clusterIP": "10.0.0.1"},
            },
            {"metadata": {"name": "headless", "namespace": "b"}, "spec": {"clusterIP": "None"}},
            {"metadata": {"name": "external", "namespace": "b"}, "spec": {"type": "ExternalName"}},
        ]
    }
    assert load_dns().hosts_lines(services) == [
        "10.0.0.1 kubernetes.default.svc.cluster.local",
        "10.0.0.20 web.b.svc.cluster.local",
    ]


def load_recorder() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "rehearsal_recorder", ROOT / "hack/rehearsal/recorder.py"
    )
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_compare_counts_lost_and_doubly_counted_runs() -> None:
    compare = load_recorder().compare
    truth = {
        ("a", "ok"): {"Succeeded": 3, "Failed": 0},
        ("a", "bad"): {"Succeeded": 0, "Failed": 2},
    }
    exact = {("a", "ok"): {"succeeded": 3}, ("a", "bad"): {"failed": 2}}
    assert compare(truth, exact)["lost"] == 0
    assert compare(truth, exact)["counted_twice"] == 0
    # One success never recorded, one failure recorded twice, a task with no status.
    off = {("a", "ok"): {"succeeded": 2}, ("a", "bad"): {"failed": 3}}
    assert (compare(truth, off)["lost"], compare(truth, off)["counted_twice"]) == (1, 1)
    assert compare(truth, {})["lost"] == 5


def test_downtime_is_the_time_with_no_ready_operator() -> None:
    recorder = load_recorder().Recorder(None, [], "ns", "sel")
    # Ready from 10 to 20, down until 25, Ready until 40, down again from 40.
    recorder.ready_changes = [(10.0, True), (20.0, False), (25.0, True), (40.0, False)]
    assert recorder.downtime(since=12, until=30) == 5
    assert recorder.downtime(since=12, until=45) == 10
    assert recorder.downtime(since=0, until=12) == 10
