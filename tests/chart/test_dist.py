"""`make dist` (hack/dist.sh) into a temporary directory: every artifact is there, the
sums check, the krew manifest names the archive's sha256, and the plugin file runs on a
bare Python. Here with the chart tests because it needs the pinned helm, not a cluster."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_dist_builds_every_artifact_with_sums(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((ROOT / "helm/cronwarden/Chart.yaml").read_text())["version"]
    env = {**os.environ, "DIST_DIR": str(out), "PYTHON": sys.executable}
    done = subprocess.run(
        [str(ROOT / "hack/dist.sh")], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    files = {p.name for p in out.iterdir()}
    expected = {
        f"cronwarden-{version}-py3-none-any.whl",
        f"cronwarden-{version}.tar.gz",
        f"cronwarden-{chart}.tgz",
        "kubectl-cronwarden",
        f"kubectl-cronwarden-{version}.tar.gz",
        "cronwarden.yaml",
        "SHA256SUMS",
    }
    image = f"cronwarden-image-{version}.oci.tar"
    assert files - {image} == expected
    if image not in files:  # no container engine here: said so
        assert "no container engine answers here" in done.stdout

    # SHA256SUMS covers every other file, and each sum is right.
    sums = dict(line.split("  ")[::-1] for line in (out / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == files - {"SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name

    # The krew manifest: this version, and the sha256 of the archive it names.
    manifest = yaml.safe_load((out / "cronwarden.yaml").read_text())
    assert (manifest["kind"], manifest["metadata"]["name"]) == ("Plugin", "cronwarden")
    assert manifest["spec"]["version"] == f"v{version}"
    [platform] = manifest["spec"]["platforms"]
    archive = out / f"kubectl-cronwarden-{version}.tar.gz"
    assert platform["uri"].endswith(f"/{archive.name}")
    assert platform["sha256"] == sums[archive.name]
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["LICENSE", "kubectl-cronwarden"]
        plugin = tar.extractfile("kubectl-cronwarden")
        assert plugin is not None
        assert plugin.read() == (out / "kubectl-cronwarden").read_bytes()
    assert {f["from"] for f in platform["files"]} == {"LICENSE", "kubectl-cronwarden"}

    # The wheel holds the package; the plugin file runs without site-packages.
    with zipfile.ZipFile(out / f"cronwarden-{version}-py3-none-any.whl") as wheel:
        assert "cronwarden/plugin/cli.py" in wheel.namelist()
    ran = subprocess.run(
        [sys.executable, "-S", "-I", str(out / "kubectl-cronwarden"), "--version"],
        capture_output=True,
        text=True,
    )
    assert ran.stdout == f"kubectl cronwarden {version}\n", ran.stderr
    assert not (ROOT / "build").exists()  # setuptools' scratch is cleaned up
