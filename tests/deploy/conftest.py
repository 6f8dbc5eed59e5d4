"""Deployment files as data: the Kubernetes manifests (through their kustomization), the compose
file, HAProxy's config and the Dockerfile, read once per session."""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZE = DEPLOY / "kubernetes"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "image: replays the Dockerfile in a debootstrapped chroot (minutes, root); "
        "runs only with GATEWAY_IMAGE_CHECK=1",
    )


def load_deploy_module(name: str) -> ModuleType:
    """A module of deploy/ (scripts, not a package), imported by path."""
    qualified = f"_deploy_{name}"
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, DEPLOY / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[qualified]


@dataclass
class Kustomization:
    spec: dict
    resources: list[dict]
    #: configMapGenerator name -> {key in the ConfigMap: file in the repo}
    config_maps: dict[str, dict[str, Path]]

    def one(self, kind: str) -> dict:
        found = [r for r in self.resources if r["kind"] == kind]
        assert len(found) == 1, f"expected one {kind}, found {len(found)}"
        return found[0]


def _generator_files(entry: dict) -> dict[str, Path]:
    files = {}
    for item in entry.get("files", []):
        key, _, path = item.rpartition("=")
        path_obj = KUSTOMIZE / path
        files[key or path_obj.name] = path_obj
    return files


@pytest.fixture(scope="session")
def kustomization() -> Kustomization:
    spec = yaml.safe_load((KUSTOMIZE / "kustomization.yaml").read_text())
    resources = []
    for name in spec["resources"]:
        resources += [doc for doc in yaml.safe_load_all((KUSTOMIZE / name).read_text()) if doc]
    config_maps = {entry["name"]: _generator_files(entry) for entry in spec.get("configMapGenerator", [])}
    return Kustomization(spec, resources, config_maps)


@pytest.fixture(scope="session")
def deployment(kustomization: Kustomization) -> dict:
    return kustomization.one("Deployment")


@pytest.fixture(scope="session")
def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.fixture(scope="session")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="session")
def haproxy_cfg() -> dict[str, list[str]]:
    """Section header ("backend gateways") -> its directive lines, comments dropped."""
    sections: dict[str, list[str]] = {}
    current = None
    for raw in (DEPLOY / "haproxy.cfg").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line[0].isspace():
            current = " ".join(line.split())
            sections[current] = []
        else:
            assert current is not None, f"directive outside a section: {line!r}"
            sections[current].append(" ".join(line.split()))
    return sections


@pytest.fixture(scope="session")
def recipe():
    return load_deploy_module("dockerfile").read_recipe((ROOT / "Dockerfile").read_text())


def option(argv: list[str], flag: str) -> str | None:
    """The value after `flag` in an argv (`--port 8000` or `--port=8000`)."""
    for i, word in enumerate(argv):
        if word == flag and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return None


def image_tag(image: str) -> str | None:
    """The tag of `repo[:tag][@digest]`, None when there is none."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def pinned(image: str) -> bool:
    tag = image_tag(image)
    return tag is not None and tag != "latest" and re.search(r"\d+\.\d+", tag) is not None
