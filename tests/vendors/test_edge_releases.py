"""Gateway software releases: built from edge/, registered by admins only, checked before they
are stored, shipped by rollouts and downloaded only by the gateways whose configuration names
them."""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from apps.vendors.gateway_services import gateway_config_current
from apps.vendors.models import EdgeRelease, Gateway
from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet
from tests.vendors.conftest import gateway_client, issue_token

pytestmark = pytest.mark.django_db

VERSION = "1.5.0"


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from apps.vendors.edge_releases import edge_wheel_build

    return edge_wheel_build(version=VERSION, out_dir=tmp_path_factory.mktemp("wheels"))


def upload(user, content: bytes, name: str, notes: str = ""):
    body = {"wheel": SimpleUploadedFile(name, content), "notes": notes}
    return jwt_client(user).post("/api/v1/gateway-releases/", body, format="multipart")


def registered(fleet: Fleet, wheel: Path) -> dict:
    response = upload(fleet.admin, wheel.read_bytes(), wheel.name, "Faster OPC UA reads")
    assert response.status_code == 201, response.json()
    return response.json()


def test_an_admin_registers_a_release_and_gateway_managers_see_it(fleet: Fleet, wheel):
    body = registered(fleet, wheel)
    assert body["version"] == VERSION and body["notes"] == "Faster OPC UA reads"
    assert body["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert body["size_bytes"] == wheel.stat().st_size
    stored = EdgeRelease.objects.get()
    assert stored.wheel.read() == wheel.read_bytes()
    seen = jwt_client(fleet.vendor).get("/api/v1/gateway-releases/").json()
    assert [r["version"] for r in seen["results"]] == [VERSION]
    assert jwt_client(fleet.designer).get("/api/v1/gateway-releases/").json()["count"] == 0
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/gateway-releases/").status_code == 401


def test_only_admins_register_releases(fleet: Fleet, wheel):
    for who in ("vendor", "operator", "engineer", "designer"):
        response = upload(fleet.user(who), wheel.read_bytes(), wheel.name)
        assert response.status_code == 403, who
    assert not EdgeRelease.objects.exists()


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def _gateway_files(version: str, *, name: str = "imewe-edge") -> dict[str, bytes]:
    files = dict.fromkeys(
        ("edge/__init__.py", "edge/gateway.py", "edge/managed.py", "edge/software.py"), b""
    )
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"imewe_edge-{version}.dist-info/METADATA"] = meta
    return files


@pytest.mark.parametrize(
    ("make", "filename", "message"),
    [
        (lambda w: w.read_bytes(), "edge.whl", "must be named imewe_edge-<version>"),
        (
            lambda w: w.read_bytes(),
            "imewe_edge-1.6.0-py3-none-any.whl",
            "1.6.0.dist-info/METADATA is missing",
        ),
        (lambda w: w.read_bytes(), "imewe_edge-01.5.0-py3-none-any.whl", "canonical version"),
        (lambda w: w.read_bytes(), "imewe_edge-latest-py3-none-any.whl", "is not a version"),
        (lambda w: b"not a zip at all", "imewe_edge-1.5.0-py3-none-any.whl", "not a readable"),
        (lambda w: b"", "imewe_edge-1.5.0-py3-none-any.whl", "empty"),
        (
            lambda w: _zip({**_gateway_files("1.5.0"), "../../etc/cron.d/evil": b"x"}),
            "imewe_edge-1.5.0-py3-none-any.whl",
            "outside its install directory",
        ),
        (
            lambda w: _zip({"imewe_edge-1.5.0.dist-info/METADATA": b"Name: imewe-edge"}),
            "imewe_edge-1.5.0-py3-none-any.whl",
            "edge/gateway.py",
        ),
        (
            lambda w: _zip(_gateway_files("1.5.0", name="requests")),
            "imewe_edge-1.5.0-py3-none-any.whl",
            "not imewe-edge",
        ),
    ],
)
def test_a_wheel_that_is_not_a_gateway_release_is_refused_by_name(
    fleet: Fleet, wheel, make, filename, message
):
    response = upload(fleet.admin, make(wheel), filename)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert "wheel" in error["details"] and message in str(error["details"]["wheel"])
    assert not EdgeRelease.objects.exists()


def test_a_release_too_large_or_twice_the_same_version_is_refused(fleet: Fleet, wheel, settings):
    registered(fleet, wheel)
    again = upload(fleet.admin, wheel.read_bytes(), wheel.name)
    assert again.status_code == 409 and "Release 1.5.0 exists" in again.json()["error"]["message"]
    settings.EDGE_RELEASE_MAX_BYTES = 1000
    big = wheel.with_name("imewe_edge-1.5.1-py3-none-any.whl")
    shutil.copy(wheel, big)
    response = upload(fleet.admin, big.read_bytes(), big.name)
    assert response.status_code == 400 and "at most 1000 bytes" in str(response.json())
    assert EdgeRelease.objects.count() == 1


@pytest.fixture
def pair(fleet: Fleet):
    """Two gateways of the vendor, each with its token, each running version 1."""
    vendor = jwt_client(fleet.vendor)
    tokens = {}
    for name in ("gw-a", "gw-b"):
        gateway = vendor.post("/api/v1/gateways/", {"name": name, "tags": [name]}).json()
        tokens[name] = issue_token(fleet, gateway["id"])
        gateway_client(tokens[name]).get("/api/v1/gateway/config/")
        report(tokens[name], 1, "imewe-edge/1.4.0")
    return tokens


def report(token: str, applied: int, software: str) -> None:
    body = {"applied_version": applied, "error": "", "nodes": {}, "software_version": software}
    response = gateway_client(token).post("/api/v1/gateway/status/", body)
    assert response.status_code == 200, response.json()


def test_a_rollout_ships_a_release_only_to_its_gateways_and_checks_what_they_run(
    fleet: Fleet, wheel, pair
):
    release = registered(fleet, wheel)
    body = {
        "name": "Edge 1.5.0",
        "release": release["id"],
        "wave_sizes": [1, 1],
        "success_threshold_pct": 100,
        "error_threshold_pct": 50,
    }
    started = jwt_client(fleet.vendor).post("/api/v1/rollouts/", body)
    assert started.status_code == 201, started.json()
    rollout = started.json()
    assert rollout["release_version"] == VERSION and rollout["forwarding"] == {}

    # the first wave's gateway is told which software to run, with the checksum
    document = gateway_client(pair["gw-a"]).get("/api/v1/gateway/config/").json()
    assert document["version"] == 2
    assert document["software"] == {
        "version": VERSION,
        "sha256": release["sha256"],
        "size": release["size_bytes"],
        "path": f"software/{release['id']}/",
    }
    # and may download it; the other gateway (not handed it yet) and people may not
    download = gateway_client(pair["gw-a"]).get(f"/api/v1/gateway/{document['software']['path']}")
    assert download.status_code == 200
    assert download.content == wheel.read_bytes()
    assert download["Content-Disposition"] == f'attachment; filename="{wheel.name}"'
    assert download["X-Content-SHA256"] == release["sha256"]
    refused = gateway_client(pair["gw-b"]).get(f"/api/v1/gateway/software/{release['id']}/")
    assert refused.status_code == 404 and refused.json()["error"]["message"]
    person = jwt_client(fleet.admin).get(f"/api/v1/gateway/software/{release['id']}/")
    assert person.status_code == 403
    missing = gateway_client(pair["gw-a"]).get("/api/v1/gateway/software/999999/")
    assert missing.status_code == 404

    # a gateway that applies the version but still runs its old software has not updated
    report(pair["gw-a"], 2, "imewe-edge/1.4.0")
    shown = jwt_client(fleet.vendor).get(f"/api/v1/rollouts/{rollout['id']}/").json()
    assert shown["status"] == "stopped"
    target = shown["targets"][0]
    assert target["state"] == "rolled_back"
    assert "on imewe-edge/1.4.0, not imewe-edge/1.5.0" in target["error"]
    document = gateway_client(pair["gw-a"]).get("/api/v1/gateway/config/").json()
    assert "software" not in document  # rolled back: no software named


def test_a_poll_that_loaded_its_gateway_before_a_rollout_keeps_the_rollouts_version(
    fleet: Fleet, wheel, pair
):
    # given a gateway row as a poll's token check loaded it, just before a rollout handed the
    # gateway new software (and made the version naming it)
    stale = Gateway.objects.get(name="gw-a")
    release = registered(fleet, wheel)
    body = {
        "name": "Edge 1.5.0",
        "release": release["id"],
        "wave_sizes": [2],
        "success_threshold_pct": 100,
        "error_threshold_pct": 0,
    }
    assert jwt_client(fleet.vendor).post("/api/v1/rollouts/", body).status_code == 201
    # when that poll asks for the current configuration with its copy
    current = gateway_config_current(gateway=stale)
    # then it gets the rollout's version, not a newer one built from the stale copy without
    # the software (which took the rollout back)
    assert current.version == 2 and current.document["software"]["version"] == VERSION
    assert list(stale.config_versions.values_list("version", flat=True).order_by("version")) == [
        1,
        2,
    ]


def test_a_completed_software_rollout_leaves_the_release_as_the_gateways_own(
    fleet: Fleet, wheel, pair
):
    release = registered(fleet, wheel)
    body = {
        "name": "Edge 1.5.0",
        "release": release["id"],
        "forwarding": {"poll_s": 5},
        "wave_sizes": [2],
        "success_threshold_pct": 100,
        "error_threshold_pct": 0,
    }
    rollout = jwt_client(fleet.vendor).post("/api/v1/rollouts/", body).json()
    for token in pair.values():
        document = gateway_client(token).get("/api/v1/gateway/config/").json()
        report(token, document["version"], f"imewe-edge/{VERSION}")
    shown = jwt_client(fleet.vendor).get(f"/api/v1/rollouts/{rollout['id']}/").json()
    assert shown["status"] == "completed"
    for gateway in Gateway.objects.filter(name__in=pair):
        assert gateway.software_release_id == release["id"] and gateway.rollout_release is None
        assert gateway.forwarding["poll_s"] == 5
    # the same document as before: no new version for a gateway that already runs it
    again = gateway_client(pair["gw-a"]).get("/api/v1/gateway/config/").json()
    assert again["version"] == 2 and again["software"]["version"] == VERSION


def test_a_rollout_names_an_existing_release(fleet: Fleet, pair):
    body = {
        "name": "x",
        "release": 424242,
        "wave_sizes": [1],
        "success_threshold_pct": 100,
        "error_threshold_pct": 0,
    }
    response = jwt_client(fleet.vendor).post("/api/v1/rollouts/", body)
    assert response.status_code == 400 and "release" in response.json()["error"]["details"]


def test_the_command_builds_a_release_from_the_checkout(fleet: Fleet, capsys, tmp_path):
    call_command("edge_release", build="1.7.0", by=fleet.admin.email, notes="From CI")
    release = EdgeRelease.objects.get(version="1.7.0")
    assert release.notes == "From CI"
    assert hashlib.sha256(release.wheel.read()).hexdigest() == release.sha256
    assert f"sha256 {release.sha256}" in capsys.readouterr().out
    with pytest.raises(CommandError, match="Only admins"):
        call_command("edge_release", build="1.8.0", by=fleet.vendor.email)
    with pytest.raises(CommandError, match="Release 1.7.0 exists"):
        call_command("edge_release", build="1.7.0", by=fleet.admin.email)
    with pytest.raises(CommandError, match="Cannot read the wheel"):
        call_command("edge_release", wheel=str(tmp_path / "nope.whl"), by=fleet.admin.email)
