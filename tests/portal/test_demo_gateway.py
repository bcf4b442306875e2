"""`manage.py demo_edge_config --managed`, as `make run` calls it: the demo fleet behind the
managed gateway Hall A, its token on disk, its state directory fresh, a demo release to roll
out; a second `make run` changes nothing but the token."""

from __future__ import annotations

from io import StringIO
from unittest.mock import patch

import pytest
from django.core.management import call_command

from apps.vendors.gateway_services import gateway_authenticate, gateway_config_current
from apps.vendors.models import EdgeRelease, Gateway, NodeConfigProfile

pytestmark = pytest.mark.django_db


def test_the_demo_fleet_runs_behind_a_managed_gateway(tmp_path):
    from apps.portal.management.commands.seed_demo import Command

    with patch.object(Command, "_seed_maintenance"):  # its model training is not needed here
        call_command("seed_demo", stdout=StringIO())
    state = tmp_path / "state"
    (state / "software" / "1.0.0").mkdir(parents=True)  # installed by an earlier run: kept
    (state / "config.json").write_text("{}")  # an earlier run's: gone
    (state / "buffer.sqlite3.1").write_text("")
    token_file = tmp_path / "gateway-token"
    options = {"managed": True, "token_file": str(token_file), "state_dir": str(state)}

    call_command("demo_edge_config", stdout=StringIO(), **options)

    gateway = Gateway.objects.get(name="Hall A")
    assert gateway.nodes.count() == 5 and gateway.site is not None
    credential = gateway_authenticate(token=token_file.read_text())
    assert credential is not None and credential.gateway == gateway
    assert token_file.stat().st_mode & 0o077 == 0
    document = gateway_config_current(gateway=gateway).document
    assert len(document["devices"]) == 5 and document["unconfigured"] == []
    printer = next(d for d in document["devices"] if d["name"] == "Printer-03")
    assert printer["protocol"] == "octoprint" and printer["work"] == {}
    assert sorted(p.name for p in state.iterdir()) == ["software"]
    assert list(EdgeRelease.objects.values_list("version", flat=True)) == ["1.0.0"]

    # a second make run: a new token, nothing else new
    profiles = NodeConfigProfile.objects.count()
    first_token = token_file.read_text()
    call_command("demo_edge_config", stdout=StringIO(), **options)
    assert NodeConfigProfile.objects.count() == profiles
    assert Gateway.objects.filter(name="Hall A").count() == 1
    assert gateway_authenticate(token=first_token) is None  # rotated
    assert gateway_authenticate(token=token_file.read_text()) is not None
    assert EdgeRelease.objects.count() == 1
    assert gateway_config_current(gateway=gateway).version == 1
