"""The API keeps the contract its OpenAPI schema states: a bounded schemathesis run of every
operation with every role's token, on a seeded database, fails on any 5xx or schema violation.

Every check schemathesis ships runs: server errors, status codes, content types, response
headers and bodies against the schema, invalid data rejected, valid data accepted (see CONFIG),
authentication not ignored, unsupported methods refused. Each operation gets a few examples per
role, generated derandomized (the same cases on every machine, so CI is not flaky), and each
case runs in a transaction that is rolled back, so every case sees the same seeded data.

Nothing is excluded: logout would revoke the token it is sent with, so every case gets a fresh
token; file uploads are sent as generated multipart bodies like any other body (their content
checks have their own tests in tests/jobs, tests/twins, tests/energy and tests/marketplace).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any
from unittest.mock import patch

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.settings import api_settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup

from apps.users.models import User
from apps.users.roles import Role
from apps.users.tokens import tokens_issue
from tests.users.factories import totp_device_for

ROLES = [Role.ADMIN, Role.DESIGNER, Role.ENGINEER, Role.VIEWER, Role.VENDOR, Role.OPERATOR]
# Per operation and role: requests that fit the schema, and requests that break it.
EXAMPLES = {GenerationMode.POSITIVE: 1, GenerationMode.NEGATIVE: 1}
# A schema cannot say which ids exist, or which state change a business rule allows right now,
# so a schema-valid request may still get a 400 that names the rule; all else is as shipped.
CONFIG = SchemathesisConfig.from_str(
    """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]
"""
)


@pytest.fixture(scope="module")
def api_schema() -> Any:
    document = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(document, config=CONFIG)
    schema.app = get_wsgi_application()  # in-process, on this test's database
    return schema


def seed() -> dict[Role, User]:
    """The demo data (one user per role, organizations, nodes, twins, stock, energy, the
    marketplace; without the maintenance history, whose model training takes most of the
    seed's time), plus a job, a ticket, a maintenance window and a simulation."""
    from apps.jobs.services import job_submit
    from apps.maintenance.services.tickets import ticket_create
    from apps.maintenance.services.windows import window_schedule
    from apps.portal.management.commands.seed_demo import Command
    from apps.twins.models import DigitalTwin
    from apps.twins.services.simulations import simulation_start
    from apps.vendors.models import FabricationNode

    with patch.object(Command, "_seed_maintenance"):
        call_command("seed_demo", stdout=StringIO())
    users = {role: User.objects.get(email=f"{role.value}@imewe.test") for role in ROLES}
    totp_device_for(users[Role.ADMIN])
    node = FabricationNode.objects.get(name="Printer-01")
    part = {"name": "Bracket", "material": "PLA", "process": "fdm", "quantity": 2}
    part |= {"size_x_mm": 40, "size_y_mm": 30, "size_z_mm": 20}
    job_submit(by=users[Role.DESIGNER], title="Brackets", parts=[part])
    operator = users[Role.OPERATOR]
    ticket_create(
        by=operator, node=node, issue_type="vibration", severity="warning", title="Rattles"
    )
    starts = timezone.now() + timedelta(days=2)
    window_schedule(
        by=operator,
        node=node,
        kind="scheduled",
        starts_at=starts,
        ends_at=starts + timedelta(hours=2),
        reason="Belt change",
    )
    twin = DigitalTwin.objects.filter(twin_type="spindle").first()
    assert twin is not None
    ageing = {"component": "spindle", "avg_rpm": 12000, "load_n": 300}
    ageing |= {"temperature_c": 40, "duty_cycle": 0.5}
    simulation_start(by=users[Role.DESIGNER], twin=twin, kind="ageing", params=ageing)
    return users


# Where a path parameter names a seeded object (the path up to the parameter -> the model, or a
# value), so the seeded cases reach the views' real answers instead of 404s.
SEEDED: dict[str, str | tuple[str, str]] = {
    "/api/v1/energy/factors/": ("energy.EmissionFactor", "kind"),
    "/api/v1/energy/jobs/": "jobs.Job",
    "/api/v1/energy/nodes/": "vendors.FabricationNode",
    "/api/v1/energy/sites/": "energy.SitePowerCap",  # (the site's id, see _seeded_value)
    "/api/v1/energy/sources/": "energy.EnergySource",
    "/api/v1/jobs/templates/": "jobs.JobTemplate",
    "/api/v1/jobs/vendor-parts/": "jobs.Part",
    "/api/v1/jobs/": "jobs.Job",
    "/api/v1/maintenance/nodes/": "vendors.FabricationNode",
    "/api/v1/maintenance/rules/": "maintenance.ThresholdRule",
    "/api/v1/maintenance/tickets/": "maintenance.Ticket",
    "/api/v1/maintenance/windows/": "maintenance.MaintenanceWindow",
    "/api/v1/market/listings/": "marketplace.Listing",
    "/api/v1/market/purchases/": "marketplace.Purchase",
    "/api/v1/market/sales/": "marketplace.Purchase",
    "/api/v1/market/sellers/": "vendors.VendorProfile",
    "/api/v1/materials/inventory/": "materials.Inventory",
    "/api/v1/materials/purchase-orders/": "materials.PurchaseOrder",
    "/api/v1/materials/": "materials.Material",
    "/api/v1/nodes/": "vendors.FabricationNode",
    "/api/v1/nodes/{id}/configs/": ("vendors.NodeConfigProfile", "version"),
    "/api/v1/organizations/": "users.Organization",
    "/api/v1/telemetry/nodes/": "vendors.FabricationNode",
    "/api/v1/twins/recipes/": "twins.MixRecipe",
    "/api/v1/twins/": ("twins.Simulation", "twin_id"),  # the twin with a simulation
    "/api/v1/twins/{id}/simulations/": "twins.Simulation",
    "/api/v1/twins/{id}/simulations/{sid}/export.": "csv",
    "/api/v1/twins/{id}/versions/": ("twins.TwinVersion", "number"),
    "/api/v1/users/": "users.User",
    "/api/v1/vendors/": "vendors.VendorProfile",
    "/api/v1/work/parts/": "jobs.Part",
}


def _seeded_value(where: str | tuple[str, str]) -> Any:
    from django.apps import apps

    if isinstance(where, str) and "." not in where:
        return where
    label, field = (where, "pk") if isinstance(where, str) else where
    if label in {"energy.SitePowerCap", "vendors.VendorProfile"}:
        field = "site_id" if label == "energy.SitePowerCap" else "organization_id"
    row = apps.get_model(label).objects.order_by("pk").values_list(field, flat=True).first()
    return row


def seeded_path_parameters(path: str) -> dict[str, Any]:
    """The path's parameters that name seeded objects (the others stay generated)."""
    found = {}
    for name in [part.split("}")[0] for part in path.split("{")[1:]]:
        prefix = path[: path.index("{" + name + "}")]
        if prefix in SEEDED and (value := _seeded_value(SEEDED[prefix])) is not None:
            found[name] = value
    return found


@contextlib.contextmanager
def in_process_requests() -> Iterator[None]:
    """Requests go through Django's WSGI handler in this thread, inside the test's transaction:
    the handler must not close that connection around each request (the test client stops it
    the same way), and throttles must not turn a thousand fast cases into 429s."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    rates = api_settings.DEFAULT_THROTTLE_RATES
    try:
        with patch.dict(rates, dict.fromkeys(rates, "1000000/minute")):
            yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


class _Rollback(Exception):
    pass


def _describe(label: str, failure: Any) -> str:
    status = getattr(failure, "status_code", None)
    first_line = (failure.message or "").strip().splitlines()[:1]
    return f"{label}: {failure.title} [{status}] {' '.join(first_line)[:200]}"


def fuzz(api_schema: Any, user: User) -> tuple[int, Counter[str], Counter[int]]:
    failures: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        seeded = seeded_path_parameters(operation.path)
        variants: list[tuple[GenerationMode, int, dict[str, Any]]] = [
            (mode, examples, {}) for mode, examples in EXAMPLES.items()
        ]
        if seeded:
            variants.append((GenerationMode.POSITIVE, 1, seeded))
        for mode, examples, path_parameters in variants:

            @settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(
                case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
            )
            def run(case: Any) -> None:
                with contextlib.suppress(_Rollback), transaction.atomic():
                    token = tokens_issue(user=user, otp_verified=True).access_token
                    try:
                        response = case.call_and_validate(
                            headers={"Authorization": f"Bearer {token}"}
                        )
                        statuses[response.status_code] += 1
                    except FailureGroup as group:
                        failures.update(
                            _describe(case.operation.label, f) for f in group.exceptions
                        )
                    raise _Rollback  # every case starts from the same seeded data

            try:
                run()
            except Unsatisfiable:
                # Nothing in the operation can be made invalid (no parameters, no body).
                assert mode == GenerationMode.NEGATIVE, operation.label
    return operations, failures, statuses


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_api_keeps_its_contract(role: Role, api_schema: Any) -> None:
    users = seed()
    with in_process_requests():
        operations, failures, statuses = fuzz(api_schema, users[role])
    report = "\n".join(f"{n:4} x {what}" for what, n in sorted(failures.items()))
    assert not failures, f"{failures.total()} failures over {operations} operations:\n{report}"
    # The run reached the views' real answers: a token that stopped working, or a seed that
    # no longer matched the paths, would let it pass on 401s and 404s alone.
    assert operations > 150
    assert statuses[401] < statuses.total() / 10, statuses
    assert sum(n for status, n in statuses.items() if status < 300) >= 25, statuses
