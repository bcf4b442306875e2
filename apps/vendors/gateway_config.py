"""The configuration document a managed gateway pulls (GET /api/v1/gateway/config/), built from
the platform's data: the gateway's forwarding settings and, per node it serves, the `edge`
section of the node's current configuration profile (NodeConfigProfile.config["edge"]):

    {"edge": {"protocol": "opcua", "url": "opc.tcp://10.0.0.5:4840/", "interval_ms": 250,
              "signals": {"spindle_rpm": "ns=2;s=Machine1.Spindle.Speed"},
              "limits": {"temperature_c": [60, 70]},
              "setpoints": {"feed_override": {"node_id": "ns=2;s=Machine1.Feed.Override",
                                              "type": "double", "low": 0, "high": 150}},
              "commands": {"stop": {"node_id": "ns=2;s=Machine1.Job.Running", "value": false}}}}

The section is the device entry of edge.yaml (edge/gateway.py) without its token: the gateway
obtains each node's device token from the platform itself. The platform checks the section's
shape only; the gateway validates it fully and keeps its last good configuration when a new one
fails, reporting why. Nodes that cannot be served (no `edge` section, not approved) are listed
under "unconfigured" with the reason, so nothing is left out silently.

Plain functions over plain data: no database here.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

FORMAT = 1
MAX_DOCUMENT_BYTES = 512 * 1024  # a gateway with hundreds of machines stays far below


@dataclass(frozen=True)
class Bound:
    low: float
    high: float
    integer: bool = False
    unit: str = ""


# forwarding settings a gateway's configuration carries (edge/gateway.py documents each)
FORWARDING: dict[str, Bound] = {
    "forward_every_s": Bound(0.01, 60, unit="s"),
    "max_silence_s": Bound(0.1, 3600, unit="s"),
    "min_urgent_gap_s": Bound(0.01, 60, unit="s"),
    "batch_size": Bound(1, 10_000, integer=True),
    "max_attempts": Bound(1, 100, integer=True),
    "max_points": Bound(1000, 100_000_000, integer=True),
    # how often the gateway asks for a new configuration and pending commands
    "poll_s": Bound(1, 3600, unit="s"),
}
DEFAULT_POLL_S = 10.0


def forwarding_clean(value: Any) -> dict[str, Any]:
    """The forwarding settings as stored, or ValidationError naming each wrong key."""
    if not isinstance(value, dict):
        raise ValidationError({"forwarding": "Give an object of settings."})
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key, raw in value.items():
        bound = FORWARDING.get(key)
        if key == "deadband":
            problem = _deadband_problem(raw)
            if problem:
                errors[f"forwarding.{key}"] = problem
            else:
                out[key] = raw
            continue
        if bound is None:
            known = ", ".join([*FORWARDING, "deadband"])
            errors[f"forwarding.{key}"] = f"Unknown setting; the settings are {known}."
            continue
        number = _number(raw)
        if number is None or not bound.low <= number <= bound.high:
            unit = f" {bound.unit}" if bound.unit else ""
            errors[f"forwarding.{key}"] = f"Give a number {bound.low:g}-{bound.high:g}{unit}."
        elif bound.integer and number != int(number):
            errors[f"forwarding.{key}"] = "Give a whole number."
        else:
            out[key] = int(number) if bound.integer else number
    if errors:
        raise ValidationError(errors)
    return out


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw) if math.isfinite(raw) else None


def _deadband_problem(raw: Any) -> str:
    if not isinstance(raw, dict):
        return 'Give {signal: {"abs": A, "rel": R}}.'
    for signal, band in raw.items():
        if not isinstance(band, dict) or not band or set(band) - {"abs", "rel"}:
            return f'{signal}: give {{"abs": A, "rel": R}} (one or both).'
        for value in band.values():
            number = _number(value)
            if number is None or number < 0:
                return f"{signal}: abs and rel must be numbers >= 0."
    return ""


def edge_section_problem(config: Any) -> str:
    """Why a node's configuration gives the gateway nothing to poll, or "" when it does."""
    edge = config.get("edge") if isinstance(config, dict) else None
    if edge is None:
        return "Its configuration has no edge section (protocol, url, signal map)."
    if not isinstance(edge, dict):
        return "Its configuration's edge section is not an object."
    for key in ("protocol", "url"):
        if not isinstance(edge.get(key), str) or not edge[key].strip():
            return f"Its configuration's edge section has no {key}."
    if "token" in edge:
        return "Its edge section holds a token: tokens never travel in configurations."
    return ""


def document_body(
    *,
    gateway_id: int,
    name: str,
    forwarding: dict[str, Any],
    nodes: list[tuple[int, str, str, dict[str, Any] | None]],
    software: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The document without its version. `nodes`: (id, name, why it cannot be served or "",
    its current configuration or None), in a stable order. `software`: the gateway software
    release it must run (apps/vendors/edge_releases.release_spec), or None for any."""
    devices: list[dict[str, Any]] = []
    unconfigured: list[dict[str, Any]] = []
    for node_id, node_name, refusal, config in nodes:
        reason = refusal or edge_section_problem(config)
        if reason:
            unconfigured.append({"node": node_id, "name": node_name, "reason": reason})
            continue
        assert config is not None
        devices.append({**config["edge"], "node": node_id, "name": node_name})
    body: dict[str, Any] = {
        "format": FORMAT,
        "gateway": {"id": gateway_id, "name": name},
        "forwarding": {"poll_s": DEFAULT_POLL_S, **forwarding},
        "devices": devices,
        "unconfigured": unconfigured,
    }
    if software is not None:  # absent, not null: the digest of older documents stays the same
        body["software"] = software
    return body


def digest_of(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def etag_for(*, gateway_id: int, version: int, digest: str) -> str:
    return f'"g{gateway_id}-v{version}-{digest[:16]}"'
