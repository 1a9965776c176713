#!/usr/bin/env python3
"""Build `kubectl cronwarden` as one file that any Python 3.11+ runs, with none of the
operator's dependencies (no kopf, pydantic, prometheus-client, kubernetes client), its
krew archive and its krew manifest (plugins/cronwarden.yaml, filled in).

The file is a zipapp: the plugin package, the request path it shares with the operator
(cronwarden/wire.py, standard library only), the pure core modules it uses (schedules,
runs), PyYAML's pure-Python modules from this venv (MIT; its LICENSE goes along), and a
stand-in for cronwarden.api.models that serves the names those core modules import
(cronwarden.plugin.names) instead of the pydantic models. Entries have fixed times, so
the same sources give the same bytes and sha256.

Usage: hack/plugin_zipapp.py --out DIR --version V [--release-url URL]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "operator" / "cronwarden"
NAME = "kubectl-cronwarden"
# The modules of ours that the plugin imports, beyond cronwarden/plugin/ itself
# (tests/unit/plugin/test_artifact.py checks that nothing else is needed).
CARRIED = ["__init__.py", "wire.py", "core/__init__.py", "core/schedule.py",
           "core/schedule_robfig.py", "core/runs.py"]  # fmt: skip
MODELS_STAND_IN = '''"""Only in the single-file kubectl plugin: what the pure core modules it
carries import from the pydantic models (cronwarden.core.schedule: DEFAULT_TIME_ZONE;
cronwarden.core.runs: LastRun, in annotations only), without pydantic."""

from cronwarden.plugin.names import *  # noqa: F403

LastRun = object
'''
MAIN = "from cronwarden.plugin.cli import main\n\nraise SystemExit(main())\n"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def entries() -> dict[str, bytes]:
    files = {f"cronwarden/{p}": (PACKAGE / p).read_bytes() for p in CARRIED}
    for path in sorted((PACKAGE / "plugin").glob("*.py")):
        files[f"cronwarden/plugin/{path.name}"] = path.read_bytes()
    files["cronwarden/api/__init__.py"] = (
        b'"""The names of the ScheduledTask API (see models)."""\n'
    )
    files["cronwarden/api/models.py"] = MODELS_STAND_IN.encode()
    pyyaml = Path(yaml.__file__).parent
    for path in sorted(pyyaml.glob("*.py")):  # not the C extension: the pure loader serves
        files[f"yaml/{path.name}"] = path.read_bytes()
    files["__main__.py"] = MAIN.encode()
    return files


def zipapp() -> bytes:
    buffer = io.BytesIO()
    buffer.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(entries().items()):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def pyyaml_license() -> bytes:
    from importlib import metadata

    dist = metadata.distribution("PyYAML")
    for f in dist.files or []:
        if f.name == "LICENSE":
            return Path(str(dist.locate_file(f))).read_bytes()
    raise SystemExit("plugin_zipapp: PyYAML's LICENSE is not installed")


def tarball(files: dict[str, tuple[bytes, int]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument(
        "--release-url",
        default="https://example.invalid/cronwarden/releases/download/v{version}",
        help="where the archive will be downloaded from ({version} is replaced)",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    program = zipapp()
    (args.out / NAME).write_bytes(program)
    (args.out / NAME).chmod(0o755)
    licenses = (ROOT / "LICENSE").read_bytes() + b"\n\n--- PyYAML ---\n\n" + pyyaml_license()
    archive = tarball({NAME: (program, 0o755), "LICENSE": (licenses, 0o644)})
    name = f"{NAME}-{args.version}.tar.gz"
    (args.out / name).write_bytes(archive)
    manifest = (ROOT / "plugins" / "cronwarden.yaml").read_text()
    manifest = manifest.replace("@RELEASE_URL@", args.release_url.format(version=args.version))
    manifest = manifest.replace("@VERSION@", args.version)
    manifest = manifest.replace("@SHA256@", hashlib.sha256(archive).hexdigest())
    (args.out / "cronwarden.yaml").write_text(manifest)
    print(f"  {args.out / NAME} ({len(program)} bytes)\n  {args.out / name}\n"
          f"  {args.out / 'cronwarden.yaml'}")  # fmt: skip


if __name__ == "__main__":
    main()
