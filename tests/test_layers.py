"""The import-linter contracts in pyproject.toml: the tree keeps them, and a break fails them.

Each break is written into a copy of the source in a temporary folder, so the check is the real
`lint-imports` over the real contracts, against a tree that differs by one import.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("apps", "edge", "imewe", "celery_worker")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # a lower app importing a higher one
        ("apps/vendors/views.py", "import apps.jobs.models", "apps.vendors is not allowed"),
        # the portal shell's place: domain apps do not import it
        ("apps/jobs/views.py", "import apps.portal.navigation", "apps.jobs is not allowed"),
        # siblings stay independent
        ("apps/energy/selectors.py", "import apps.materials.models", "apps.energy is not allowed"),
        # twins asks maintenance through its provider hook, never by import (apps/twins/providers)
        ("apps/twins/views.py", "import apps.maintenance.models", "apps.twins is not allowed"),
        # edge stays plain Python
        ("edge/buffer.py", "import django.conf", "edge is not allowed to import django"),
        ("edge/gateway.py", "from apps.core import labels", "edge is not allowed to import apps"),
        # the pure domain modules import no Django
        # (packages: every module of the mixer and physics counts)
        (
            "apps/twins/mixer/product.py",
            "from django.db import models",
            "apps.twins.mixer is not allowed",
        ),
        (
            "apps/twins/physics/laws.py",
            "import django.conf",
            "apps.twins.physics is not allowed",
        ),
    ],
)
def test_one_bad_import_breaks_a_contract(tree: Path, module: str, line: str, broken: str) -> None:
    # given a copy of the tree with one import against the map
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")

    # when lint-imports checks it
    result = _lint_imports(tree)

    # then it fails and names the break
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 broken" in result.stdout
    assert broken in result.stdout
    assert module.removesuffix(".py").replace("/", ".") in result.stdout
