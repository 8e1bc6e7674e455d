"""Binder's config agrees with the package: every runtime dependency pinned, pins within pyproject's
bounds and equal to the tested constraints, no local paths, Python 3.11, graphviz and a CJK font from apt."""
from __future__ import annotations

import json
import os
import tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.labs.notebooks import REPO

BINDER = REPO / "binder"
TEST_ONLY = {"pytest", "nbval", "playwright", "nbconvert", "nbclient", "jupyterlab", "notebook", "jupyter-server",
             "onnxruntime"}


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _requirement_lines(path) -> list[str]:
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def _pins(path) -> dict[str, Version]:
    pins = {}
    for line in _requirement_lines(path):
        req = Requirement(line)
        (spec,) = list(req.specifier) or [None]
        assert spec is not None and spec.operator == "==", f"{path.name}: {line!r} must be an exact '==' pin"
        pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def test_requirements_pin_every_runtime_dependency_within_its_bounds():
    pins = _pins(BINDER / "requirements.txt")
    for dep in _pyproject()["project"]["dependencies"]:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        assert name in pins, f"binder/requirements.txt does not pin the runtime dependency {req.name!r}"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"binder/requirements.txt pins {req.name}=={pins[name]}, outside pyproject's {req.specifier}")


def test_requirements_match_the_tested_constraints():
    constraints = _pins(REPO / "constraints.txt")
    for name, version in _pins(BINDER / "requirements.txt").items():
        assert constraints.get(name) == version, (
            f"binder pins {name}=={version}, constraints.txt has {constraints.get(name)}: keep them in step")


def test_constraints_satisfy_every_declared_dependency():
    constraints = _pins(REPO / "constraints.txt")
    project = _pyproject()["project"]
    deps = list(project["dependencies"]) + [d for extra in project["optional-dependencies"].values() for d in extra]
    for dep in deps:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        assert name in constraints, f"constraints.txt has no pin for {req.name!r}"
        assert req.specifier.contains(constraints[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={constraints[name]}, outside pyproject's {req.specifier}")


def test_requirements_have_no_local_paths_and_no_test_tooling():
    for line in _requirement_lines(BINDER / "requirements.txt"):
        assert not line.startswith(("-", ".", "/")) and "file:" not in line, (
            f"binder/requirements.txt: {line!r} — a local path makes Binder reinstall on every commit; "
            f"binder/postBuild installs the project")
        assert canonicalize_name(Requirement(line).name) not in TEST_ONLY, f"{line!r} does not belong in Binder"


def test_runtime_python_and_apt():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime == "python-3.11", "repo2docker wants exactly 'python-x.y' (a patch version fails)"
    assert SpecifierSet(_pyproject()["project"]["requires-python"]).contains("3.11")
    apt = _requirement_lines(BINDER / "apt.txt")
    assert "graphviz" in apt
    assert "fonts-noto-cjk" in apt, "the labs' Chinese terms need a CJK font, or they render as empty boxes"


def test_post_build_installs_the_project_and_quiets_jupyterlab():
    post_build = BINDER / "postBuild"
    text = post_build.read_text()
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable"
    assert text.startswith("#!") and "set -e" in text, "postBuild must stop on errors (repo2docker ignores them)"
    assert "--no-deps -e ." in text
    settings = json.loads((BINDER / "overrides.json").read_text())
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
