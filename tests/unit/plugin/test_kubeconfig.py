"""Where the plugin connects and as whom, decided as kubectl decides it, from
kubeconfig files written here (no cluster)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from cronwarden.plugin import kubeconfig
from cronwarden.plugin.errors import ClusterError


def write(path: Path, *, current: str | None, contexts: list[dict[str, Any]], **kinds: Any) -> Path:
    doc = {"apiVersion": "v1", "kind": "Config", "contexts": contexts, **kinds}
    if current:
        doc["current-context"] = current
    path.write_text(yaml.safe_dump(doc))
    return path


def context(name: str, cluster: str, user: str, namespace: str | None = None) -> dict[str, Any]:
    ctx = {"cluster": cluster, "user": user, **({"namespace": namespace} if namespace else {})}
    return {"name": name, "context": ctx}


@pytest.fixture
def two_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    (tmp_path / "ca.crt").write_text("not read here")
    first = write(
        tmp_path / "first",
        current="dev",
        contexts=[context("dev", "dev", "alice", "team-a")],
        clusters=[{"name": "dev", "cluster": {"server": "https://dev:6443/",
                                             "certificate-authority": "ca.crt"}}],
        users=[{"name": "alice", "user": {"token": "first-token"}}],
    )  # fmt: skip
    second = write(
        tmp_path / "second",
        current="prod",
        contexts=[context("prod", "prod", "bob"), context("dev", "prod", "bob")],
        clusters=[{"name": "prod", "cluster": {"server": "https://prod:443",
                                              "insecure-skip-tls-verify": True}}],
        users=[{"name": "bob", "user": {"username": "bob", "password": "pw"}}],
    )  # fmt: skip
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(second)]))
    return first, second


def test_merged_files_first_one_wins(two_files: tuple[Path, Path], tmp_path: Path) -> None:
    login = kubeconfig.load(None, None)
    assert (login.server, login.namespace) == ("https://dev:6443", "team-a")
    assert login.ca_file == str(tmp_path / "ca.crt")  # relative to the file that names it
    assert login.headers == {"Authorization": "Bearer first-token"}
    prod = kubeconfig.load(None, "prod")
    assert (prod.server, prod.namespace, prod.insecure) == ("https://prod:443", "default", True)
    assert prod.headers["Authorization"] == "Basic " + base64.b64encode(b"bob:pw").decode()


def test_kubeconfig_flag_beats_the_environment(
    two_files: tuple[Path, Path], tmp_path: Path
) -> None:
    assert kubeconfig.load(str(two_files[1]), None).server == "https://prod:443"


def test_unknown_context_and_missing_file(two_files: tuple[Path, Path]) -> None:
    with pytest.raises(ClusterError, match='context "nosuch" does not exist'):
        kubeconfig.load(None, "nosuch")
    with pytest.raises(ClusterError, match="no kubeconfig at /nonexistent/k"):
        kubeconfig.load("/nonexistent/k", None)


def test_certificate_data_and_exec_credentials(tmp_path: Path) -> None:
    plugin = tmp_path / "credential"
    plugin.write_text(
        "#!/bin/sh\n"
        'echo "{\\"apiVersion\\": \\"client.authentication.k8s.io/v1\\", '
        '\\"status\\": {\\"token\\": \\"from-exec-$CLUSTER\\"}}"\n'
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    path = write(
        tmp_path / "config",
        current="c",
        contexts=[context("c", "c", "u")],
        clusters=[{"name": "c", "cluster": {
            "server": "https://c:6443",
            "certificate-authority-data": base64.b64encode(b"PEM CA").decode(),
        }}],
        users=[{"name": "u", "user": {
            "client-certificate-data": base64.b64encode(b"CERT").decode(),
            "client-key-data": base64.b64encode(b"KEY").decode(),
            "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                     "env": [{"name": "CLUSTER", "value": "c"}]},
        }}],
    )  # fmt: skip
    login = kubeconfig.load(str(path), None)
    assert (login.ca_data, login.cert_pem, login.key_pem) == ("PEM CA", b"CERT", b"KEY")
    assert login.headers == {"Authorization": "Bearer from-exec-c"}


def test_a_failing_exec_plugin_is_one_clear_error(tmp_path: Path) -> None:
    spec = {"command": "sh", "args": ["-c", "echo 'token expired: run login' >&2; exit 3"]}
    with pytest.raises(ClusterError) as raised:
        kubeconfig.exec_credential(spec, "https://c")
    assert str(raised.value) == (
        "the kubeconfig's exec credential plugin sh exited 3: token expired: run login"
    )
