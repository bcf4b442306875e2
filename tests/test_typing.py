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
# Test modules still checked without strict Optional handling (issue 24, item 5): take from it,
# never add. The suite's other modules are checked in full.
OPTIONAL_CEILING = {
    "tests.edge.test_gateway",
    "tests.edge.test_printer_gateway",
    "tests.edge.test_printer_work",
    "tests.jobs.test_bed_clear",
    "tests.jobs.test_duration_model",
    "tests.jobs.test_estimate_dry_run",
    "tests.jobs.test_job_pages",
    "tests.jobs.test_jobs_api",
    "tests.jobs.test_scheduler",
    "tests.jobs.test_scheduler_timeline",
    "tests.jobs.test_scheduling",
    "tests.maintenance.test_anomaly_rul",
    "tests.maintenance.test_machine_fault_loop",
    "tests.maintenance.test_training",
    "tests.maintenance.test_windows_and_monitor",
    "tests.marketplace.test_listing_pages",
    "tests.marketplace.test_listings",
    "tests.marketplace.test_reviews",
    "tests.marketplace.test_uses",
    "tests.materials.test_pages",
    "tests.materials.test_spool_usage",
    "tests.materials.test_stock",
    "tests.notify.test_escalation",
    "tests.telemetry.test_fast_validation",
    "tests.telemetry.test_ingest_service",
    "tests.users.test_registration_privacy",
    "tests.users.test_two_factor",
    "tests.vendors.test_node_settings",
    "tests.vendors.test_vendor_portal",
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


def test_the_tests_relaxed_on_optionals_only_shrink() -> None:
    relaxed = [o for o in _mypy_config().get("overrides", []) if "strict_optional" in o]
    assert len(relaxed) <= 1, "one strict_optional override in [tool.mypy]"
    modules = set(relaxed[0]["module"]) if relaxed else set()
    assert all(m.startswith("tests.") for m in modules), "apps keep strict Optional handling"
    assert modules <= OPTIONAL_CEILING, (
        f"joined the relaxed list: {sorted(modules - OPTIONAL_CEILING)}"
    )
