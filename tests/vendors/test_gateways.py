"""Managed gateways: registration and rights, their token, the configuration they pull (ETag),
the node tokens they obtain and the status they report."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from apps.core.models import AuditLog
from apps.telemetry.models import TelemetryPoint
from apps.vendors.models import FabricationNode, GatewayCredential
from apps.vendors.services import device_credential_issue, hash_token, node_config_save
from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet, approved_node, make_node
from tests.vendors.conftest import gateway_client, issue_token

pytestmark = pytest.mark.django_db

EDGE = {
    "protocol": "opcua",
    "url": "opc.tcp://10.0.0.5:4840/",
    "interval_ms": 250,
    "signals": {"spindle_rpm": "ns=2;s=Machine1.Spindle.Speed"},
}


def register(fleet: Fleet, **fields) -> dict:
    body = {"name": "Hall-A", "site": fleet.site.pk, "tags": ["Line-2"], **fields}
    response = jwt_client(fleet.vendor).post("/api/v1/gateways/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.fixture
def served(fleet: Fleet):
    """A gateway serving two approved nodes, one with an edge section, and its token."""
    mill = approved_node(fleet, name="Mill-GW")
    node_config_save(node=mill, by=fleet.vendor, config={"edge": EDGE, "spindle": {"a": 1}})
    bare = approved_node(fleet, name="Bare-GW")
    gateway = register(fleet, nodes=[mill.pk, bare.pk])
    return gateway, issue_token(fleet, gateway["id"]), mill, bare


def test_vendor_registers_a_gateway_and_its_token_is_shown_once(fleet: Fleet):
    node = approved_node(fleet)
    gateway = register(fleet, nodes=[node.pk])
    assert gateway["tags"] == ["line-2"] and gateway["nodes"] == [node.pk]
    assert gateway["online"] is False and gateway["applied_version"] is None
    token = issue_token(fleet, gateway["id"])
    stored = GatewayCredential.objects.get(gateway_id=gateway["id"])
    assert token.startswith("imwgw_") and stored.token_hash == hash_token(token)
    listed = jwt_client(fleet.vendor).get(f"/api/v1/gateways/{gateway['id']}/credentials/")
    assert token not in str(listed.json()) and listed.json()[0]["active"] is True
    assert AuditLog.objects.filter(object_type="vendors.gateway", action="object.create").exists()
    node.refresh_from_db()
    assert node.gateway_id == gateway["id"]


def test_who_sees_and_changes_a_gateway(fleet: Fleet):
    gateway = register(fleet)
    url = f"/api/v1/gateways/{gateway['id']}/"
    assert jwt_client(fleet.rival).get(url).status_code == 404
    assert jwt_client(fleet.designer).get(url).status_code == 404
    assert jwt_client(fleet.designer).get("/api/v1/gateways/").json()["count"] == 0
    # the site's operator watches it, but does not change it or get its token
    operator = jwt_client(fleet.operator)
    assert operator.get(url).status_code == 200
    assert operator.patch(url, {"tags": ["x"]}, format="json").status_code == 403
    assert operator.post(f"{url}credentials/").status_code == 403
    assert jwt_client(fleet.admin).patch(url, {"tags": ["x"]}, format="json").status_code == 200
    assert APIClient().get(url).status_code == 401


def test_a_vendor_registers_gateways_only_for_itself_and_with_its_own_nodes(fleet: Fleet):
    response = jwt_client(fleet.rival).post(
        "/api/v1/gateways/", {"name": "X", "vendor": fleet.forge.pk}, format="json"
    )
    assert response.status_code == 403
    node = approved_node(fleet)
    rival = fleet.rival.memberships.get().organization
    response = jwt_client(fleet.admin).post(
        "/api/v1/gateways/", {"name": "X", "vendor": rival.pk, "nodes": [node.pk]}, format="json"
    )
    assert response.status_code == 400
    assert "vendor" in response.json()["error"]["details"]["nodes"][0]
    first = register(fleet, nodes=[node.pk])
    response = jwt_client(fleet.vendor).post(
        "/api/v1/gateways/", {"name": "Hall-B", "nodes": [node.pk]}, format="json"
    )
    assert response.status_code == 409 and "Hall-A" in response.json()["error"]["message"]
    assert FabricationNode.objects.get(pk=node.pk).gateway_id == first["id"]


@pytest.mark.parametrize(
    ("forwarding", "field", "words"),
    [
        ({"forward_every_s": 0}, "forwarding.forward_every_s", "0.01-60"),
        ({"batch_size": 2.5}, "forwarding.batch_size", "whole number"),
        ({"poll_s": "often"}, "forwarding.poll_s", "1-3600"),
        ({"colour": "red"}, "forwarding.colour", "Unknown setting"),
        ({"deadband": {"temperature_c": {"abs": -1}}}, "forwarding.deadband", ">= 0"),
    ],
)
def test_bad_forwarding_settings_are_refused_by_name(fleet: Fleet, forwarding, field, words):
    client = jwt_client(fleet.vendor)
    response = client.post(
        "/api/v1/gateways/", {"name": "Hall-A", "forwarding": forwarding}, format="json"
    )
    assert response.status_code == 400, response.content
    assert words in str(response.json()["error"]["details"][field])


def test_the_gateway_pulls_its_configuration_with_etag(fleet: Fleet, served):
    gateway, token, mill, bare = served
    client = gateway_client(token)
    first = client.get("/api/v1/gateway/config/")
    assert first.status_code == 200
    body = first.json()
    assert body["version"] == 1 and body["gateway"] == {"id": gateway["id"], "name": "Hall-A"}
    assert body["devices"] == [{**EDGE, "node": mill.pk, "name": "Mill-GW"}]
    assert body["unconfigured"][0]["node"] == bare.pk
    assert "no edge section" in body["unconfigured"][0]["reason"]
    etag = first["ETag"]
    again = client.get("/api/v1/gateway/config/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    # the platform's data changes: a new version, a new ETag
    node_config_save(node=bare, by=fleet.vendor, config={"edge": {**EDGE, "url": "opc.tcp://b"}})
    changed = client.get("/api/v1/gateway/config/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert changed["ETag"] != etag and len(changed.json()["devices"]) == 2
    # forwarding settings travel too
    jwt_client(fleet.vendor).patch(
        f"/api/v1/gateways/{gateway['id']}/", {"forwarding": {"poll_s": 2}}, format="json"
    )
    assert client.get("/api/v1/gateway/config/").json()["forwarding"] == {"poll_s": 2.0}


def test_a_token_in_an_edge_section_is_not_sent(fleet: Fleet, served):
    _, token, mill, _ = served
    node_config_save(node=mill, by=fleet.vendor, config={"edge": {**EDGE, "token": "imw_x"}})
    body = gateway_client(token).get("/api/v1/gateway/config/").json()
    assert body["devices"] == [] and "token" in body["unconfigured"][0]["reason"]


def test_only_the_gateway_itself_reads_its_configuration(fleet: Fleet, served):
    gateway, token, mill, _ = served
    other = (
        jwt_client(fleet.vendor).post("/api/v1/gateways/", {"name": "Hall-B"}, format="json").json()
    )
    other_token = issue_token(fleet, other["id"])
    theirs = gateway_client(other_token).get("/api/v1/gateway/config/").json()
    assert theirs["gateway"]["id"] == other["id"] and theirs["devices"] == []
    # a node's device token is not a gateway's
    _, node_token = device_credential_issue(node=mill, by=fleet.vendor)
    node_client = APIClient()
    node_client.credentials(HTTP_AUTHORIZATION=f"Device {node_token}")
    response = node_client.get("/api/v1/gateway/config/")
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    # people are not gateways either
    assert jwt_client(fleet.admin).get("/api/v1/gateway/config/").status_code == 403
    # a gateway token opens none of the people's endpoints
    assert gateway_client(token).get(f"/api/v1/gateways/{gateway['id']}/").status_code == 401
    # revoked: refused at once
    credential = GatewayCredential.objects.get(gateway_id=gateway["id"], revoked_at=None)
    jwt_client(fleet.vendor).post(
        f"/api/v1/gateways/{gateway['id']}/credentials/{credential.pk}/revoke/"
    )
    response = gateway_client(token).get("/api/v1/gateway/config/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "gateway_token_invalid"
    assert gateway_client("imwgw_guess").get("/api/v1/gateway/config/").status_code == 401


def test_the_gateway_gets_device_tokens_for_its_own_nodes_only(fleet: Fleet, served):
    _, token, mill, _ = served
    client = gateway_client(token)
    response = client.post(f"/api/v1/gateway/nodes/{mill.pk}/token/")
    assert response.status_code == 201
    node_token = response.json()["token"]
    # the token writes the node's telemetry like any device token
    device = APIClient()
    device.credentials(HTTP_AUTHORIZATION=f"Device {node_token}")
    point = {"node": mill.pk, "time": datetime.now(UTC).isoformat(), "spindle_rpm": 1200}
    assert device.post("/api/v1/telemetry/", point, format="json").status_code == 201
    assert TelemetryPoint.objects.filter(node=mill).count() == 1
    foreign = make_node(fleet, name="Not-Mine")
    assert client.post(f"/api/v1/gateway/nodes/{foreign.pk}/token/").status_code == 403
    assert client.post("/api/v1/gateway/nodes/999999/token/").status_code == 403


def test_the_gateway_reports_its_status(fleet: Fleet, served):
    gateway, token, mill, _ = served
    client = gateway_client(token)
    client.get("/api/v1/gateway/config/")
    report = {
        "applied_version": 1,
        "error": "",
        "software_version": "imewe-edge/1",
        "nodes": {
            str(mill.pk): {
                "buffered": 12,
                "last_upload": "2026-01-05T10:00:00Z",
                "source_errors": 2,
                "last_error": "unreachable: timed out",
            }
        },
    }
    assert client.post("/api/v1/gateway/status/", report, format="json").status_code == 200
    shown = jwt_client(fleet.operator).get(f"/api/v1/gateways/{gateway['id']}/").json()
    assert shown["online"] is True and shown["applied_version"] == 1
    assert shown["health"]["nodes"][str(mill.pk)]["buffered"] == 12
    bad = {**report, "applied_version": 7}
    response = client.post("/api/v1/gateway/status/", bad, format="json")
    assert response.status_code == 400 and "never issued" in str(response.json())
    bad = {**report, "nodes": {"x": {"buffered": -1}}}
    response = client.post("/api/v1/gateway/status/", bad, format="json")
    assert response.status_code == 400 and "nodes" in response.json()["error"]["details"]


CONTROLLED = {
    **EDGE,
    "setpoints": {"feed": {"node_id": "ns=2;s=Feed", "type": "double", "low": 0, "high": 150}},
    "commands": {"stop": {"node_id": "ns=2;s=Run", "type": "boolean", "value": False}},
}


@pytest.fixture
def controlled(fleet: Fleet, served):
    gateway, token, mill, bare = served
    node_config_save(node=mill, by=fleet.vendor, config={"edge": CONTROLLED})
    return gateway, token, mill, bare


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"kind": "setpoint", "setpoint": "spindle", "value": 1}, "setpoint", "allows: feed"),
        ({"kind": "setpoint", "setpoint": "feed", "value": 151}, "value", "0 to 150"),
        ({"kind": "setpoint", "setpoint": "feed"}, "value", "finite number"),
        ({"kind": "pause"}, "kind", "it has: stop"),
        ({"kind": "stop", "value": 3}, "setpoint", "takes no setpoint"),
        ({"kind": "stop", "ttl_s": 1}, "ttl_s", "5-86400"),
        ({"kind": "reboot"}, "kind", "not a valid choice"),
    ],
)
def test_a_command_the_device_map_does_not_allow_is_refused_by_name(
    fleet: Fleet, controlled, body, field, words
):
    _, _, mill, _ = controlled
    response = jwt_client(fleet.vendor).post(f"/api/v1/nodes/{mill.pk}/commands/", body)
    assert response.status_code == 400, response.json()
    assert words in str(response.json()["error"]["details"][field])
    assert not mill.commands.exists()


def test_who_may_command_a_machine(fleet: Fleet, controlled):
    _, _, mill, _ = controlled
    url = f"/api/v1/nodes/{mill.pk}/commands/"
    for who in ("designer", "engineer", "viewer"):
        assert jwt_client(fleet.user(who)).post(url, {"kind": "stop"}).status_code == 403, who
        assert jwt_client(fleet.user(who)).get(url).status_code == 403, who
    assert jwt_client(fleet.rival).post(url, {"kind": "stop"}).status_code == 403
    assert APIClient().post(url, {"kind": "stop"}).status_code == 401
    assert not mill.commands.exists()
    for who in ("vendor", "operator", "admin"):
        assert jwt_client(fleet.user(who)).post(url, {"kind": "stop"}).status_code == 201, who
    listed = jwt_client(fleet.operator).get(url).json()
    assert [c["issued_by_email"] for c in listed] == ["admin@f.test", "op@f.test", "vendor@f.test"]
    assert {c["status"] for c in listed} == {"pending"}


def test_a_machine_without_a_gateway_takes_no_command(fleet: Fleet):
    node = approved_node(fleet, name="Lonely")
    node_config_save(node=node, by=fleet.vendor, config={"edge": CONTROLLED})
    response = jwt_client(fleet.vendor).post(f"/api/v1/nodes/{node.pk}/commands/", {"kind": "stop"})
    assert (
        response.status_code == 409 and "No managed gateway" in response.json()["error"]["message"]
    )


def test_a_gateway_takes_and_acknowledges_only_its_own_machines_commands(fleet: Fleet, controlled):
    _, token, mill, _ = controlled
    command = (
        jwt_client(fleet.vendor)
        .post(
            f"/api/v1/nodes/{mill.pk}/commands/",
            {"kind": "setpoint", "setpoint": "feed", "value": 80},
        )
        .json()
    )
    other = jwt_client(fleet.vendor).post("/api/v1/gateways/", {"name": "Hall-B"}).json()
    other_client = gateway_client(issue_token(fleet, other["id"]))
    assert other_client.post("/api/v1/gateway/commands/take/").json() == []
    _, node_token = device_credential_issue(node=mill, by=fleet.vendor)
    device = APIClient()
    device.credentials(HTTP_AUTHORIZATION=f"Device {node_token}")
    assert device.post("/api/v1/gateway/commands/take/").status_code == 403
    client = gateway_client(token)
    taken = client.post("/api/v1/gateway/commands/take/").json()
    assert [(c["id"], c["kind"], c["setpoint"], c["value"]) for c in taken] == [
        (command["id"], "setpoint", "feed", 80.0)
    ]
    assert client.post("/api/v1/gateway/commands/take/").json() == []  # handed over once
    ack = f"/api/v1/gateway/commands/{command['id']}/ack/"
    assert other_client.post(ack, {"ok": True, "outcome": "x"}).status_code == 403
    assert client.post(ack, {"ok": "maybe"}).status_code == 400
    assert client.post(ack, {"ok": True, "outcome": "wrote 80.0"}).status_code == 200
    assert client.post(ack, {"ok": False, "outcome": "again"}).status_code == 409
    shown = jwt_client(fleet.vendor).get(f"/api/v1/nodes/{mill.pk}/commands/").json()[0]
    assert shown["status"] == "succeeded" and shown["outcome"] == "wrote 80.0"


@pytest.mark.parametrize(
    ("url", "body", "message"),
    [
        ("/api/v1/gateways/", {"name": "X"}, "owns the gateway"),
        (
            "/api/v1/rollouts/",
            {"name": "X", "forwarding": {"poll_s": 5}, "wave_sizes": [1]}
            | {"success_threshold_pct": 100, "error_threshold_pct": 0},
            "owns the gateways",
        ),
    ],
)
def test_an_admin_says_which_vendor_a_new_thing_belongs_to(fleet: Fleet, url, body, message):
    # an admin acts for every vendor: without `vendor` the request is refused by name
    response = jwt_client(fleet.admin).post(url, body, format="json")
    assert response.status_code == 400, response.json()
    assert message in str(response.json()["error"]["details"]["vendor"])
