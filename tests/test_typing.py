"""The strict-typing ratchet in pyproject.toml: its modules get every check `mypy --strict` makes
(read from mypy itself, so a newer mypy's additions show up here), and none leaves the list."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from mypy.main import define_options

ROOT = Path(__file__).resolve().parent.parent
# Modules that passed `mypy --strict` and must keep passing: add to it, never remove.
STRICT_FLOOR = {
    "apps.core",
    "apps.core.*",
    "apps.energy",
    "apps.energy.*",
    "apps.jobs",
    "apps.jobs.*",
    "apps.maintenance",
    "apps.maintenance.*",
    "apps.marketplace",
    "apps.marketplace.*",
    "apps.materials",
    "apps.materials.*",
    "apps.notify",
    "apps.notify.*",
    "apps.portal",
    "apps.portal.*",
    "apps.telemetry",
    "apps.telemetry.*",
    "apps.twins",
    "apps.twins.*",
    "apps.users",
    "apps.users.*",
    "apps.vendors",
    "apps.vendors.*",
    "imewe",
    "imewe.*",
    "celery_worker",
    "celery_worker.*",
}
GLOBAL_ONLY = {"warn_redundant_casts"}  # mypy takes these in the global section only


def _mypy_config() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    return config


def _strict_override() -> dict[str, Any]:
    overrides = [
        o for o in _mypy_config().get("overrides", []) if o.get("disallow_untyped_defs") is True
    ]
    assert len(overrides) == 1, "one strict override in [tool.mypy]"
    return overrides[0]


def test_the_strict_override_makes_every_check_of_strict() -> None:
    _, _, strict = define_options()
    override, config = _strict_override(), _mypy_config()
    for flag, value in strict:
        where = config if flag in GLOBAL_ONLY else override
        assert where.get(flag) is value, f"{flag} = {str(value).lower()} missing"


def test_the_strict_modules_only_grow() -> None:
    modules = set(_strict_override()["module"])
    assert modules >= STRICT_FLOOR, f"left the strict list: {sorted(STRICT_FLOOR - modules)}"


def test_tests_are_type_checked_in_full() -> None:
    """tests/ left the mypy exclude (issue 24, item 5) and keep every check apps/ had then:
    no override may loosen the Optional checks or skip a module's errors again."""
    config = _mypy_config()
    assert not any(p.startswith("^tests") for p in config["exclude"]), config["exclude"]
    for override in config.get("overrides", []):
        assert override.get("strict_optional", True), override["module"]
        assert not override.get("ignore_errors", False), override["module"]
