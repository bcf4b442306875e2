"""Writes about managed gateways: registration, the nodes they serve, their credentials, the
configuration versions they pull and the status they report."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import JSONField, OuterRef, Subquery
from django.utils import timezone

from apps.core.exceptions import Conflict
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors import gateway_config
from apps.vendors.edge_releases import release_spec
from apps.vendors.gateway_selectors import gateway_can_manage
from apps.vendors.models import (
    DeviceCredential,
    EdgeRelease,
    FabricationNode,
    Gateway,
    GatewayConfigVersion,
    GatewayCredential,
    NodeConfigProfile,
)
from apps.vendors.services import device_credential_create, hash_token

GATEWAY_TOKEN_PREFIX = "imwgw_"  # never "imw_": a gateway token is not a node's device token
MAX_TAGS = 20


def _require_manage(user: User, gateway: Gateway) -> None:
    if not gateway_can_manage(user=user, gateway=gateway):
        raise PermissionDenied("Only the gateway's vendor or an admin may change it.")


def _tags_clean(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise ValidationError({"tags": "Give a list of non-empty tags."})
    tags = sorted({t.strip().lower() for t in value})
    if len(tags) > MAX_TAGS or any(len(t) > 40 for t in tags):
        raise ValidationError({"tags": f"At most {MAX_TAGS} tags of at most 40 characters."})
    return tags


def _site_clean(site: Organization | None) -> Organization | None:
    if site is not None and site.kind != Organization.Kind.OPERATOR_SITE:
        raise ValidationError({"site": "A gateway stands at an operator site."})
    return site


def _nodes_set(gateway: Gateway, nodes: list[FabricationNode]) -> None:
    """Make `nodes` exactly the machines `gateway` serves. A node belongs to the gateway's
    vendor and is served by one gateway at most: taking it from another is refused, not done
    silently (that gateway would stop polling it)."""
    ids = {n.pk for n in nodes}
    foreign = [n.name for n in nodes if n.vendor_id != gateway.vendor_id]
    if foreign:
        raise ValidationError(
            {"nodes": f"Not nodes of this gateway's vendor: {', '.join(foreign)}."}
        )
    taken = (
        FabricationNode.objects.filter(pk__in=ids, gateway__isnull=False)
        .exclude(gateway=gateway)
        .select_related("gateway")
    )
    if taken:
        names = ", ".join(f"{n.name} (by {n.gateway})" for n in taken)
        raise Conflict(f"Already served by another gateway: {names}.", field="nodes")
    # one save per node so each move is in the audit log
    for node in gateway.nodes.exclude(pk__in=ids):
        node.gateway = None
        node.save(update_fields=["gateway", "updated_at"])
    for node in FabricationNode.objects.filter(pk__in=ids, gateway__isnull=True):
        node.gateway = gateway
        node.save(update_fields=["gateway", "updated_at"])


@transaction.atomic
def gateway_register(
    *,
    by: User,
    vendor: Organization,
    name: str,
    site: Organization | None = None,
    tags: list[str] | None = None,
    forwarding: dict[str, Any] | None = None,
    nodes: list[FabricationNode] | None = None,
) -> Gateway:
    if vendor.kind != Organization.Kind.VENDOR:
        raise ValidationError({"vendor": "Gateways belong to vendor companies."})
    scope = scope_for(by, Action.NODE_MANAGE)
    if scope != Scope.ALL and not (
        scope == Scope.OWN_NODES and vendor.memberships.filter(user=by).exists()
    ):
        raise PermissionDenied("You may register gateways only for your own vendor company.")
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the gateway a name."})
    if Gateway.objects.filter(vendor=vendor, name__iexact=name).exists():
        raise Conflict("This vendor already has a gateway with this name.", field="name")
    gateway = Gateway(
        vendor=vendor,
        site=_site_clean(site),
        name=name,
        tags=_tags_clean(tags or []),
        forwarding=gateway_config.forwarding_clean(forwarding or {}),
        created_by=by,
    )
    gateway.full_clean()
    gateway.save()
    if nodes:
        _nodes_set(gateway, nodes)
    return gateway


@transaction.atomic
def gateway_update(*, gateway: Gateway, by: User, **fields: Any) -> Gateway:
    _require_manage(by, gateway)
    unknown = set(fields) - {"name", "site", "tags", "forwarding", "nodes"}
    if unknown:
        raise ValidationError(f"Not editable: {', '.join(sorted(unknown))}.")
    gateway = Gateway.objects.select_for_update().get(pk=gateway.pk)
    nodes = fields.pop("nodes", None)
    if "name" in fields:
        fields["name"] = fields["name"].strip()
        if (
            Gateway.objects.filter(vendor=gateway.vendor, name__iexact=fields["name"])
            .exclude(pk=gateway.pk)
            .exists()
        ):
            raise Conflict("This vendor already has a gateway with this name.", field="name")
    if "site" in fields:
        fields["site"] = _site_clean(fields["site"])
    if "tags" in fields:
        fields["tags"] = _tags_clean(fields["tags"])
    if "forwarding" in fields:
        fields["forwarding"] = gateway_config.forwarding_clean(fields["forwarding"])
    for key, value in fields.items():
        setattr(gateway, key, value)
    gateway.full_clean()
    if fields:
        gateway.save(update_fields=[*fields, "updated_at"])
    if nodes is not None:
        _nodes_set(gateway, nodes)
    return gateway


# --- Credentials -----------------------------------------------------------------------------


@transaction.atomic
def gateway_credential_issue(*, gateway: Gateway, by: User) -> tuple[GatewayCredential, str]:
    """A new token for the gateway; earlier active ones are revoked (rotation). The raw token is
    returned once and never stored."""
    _require_manage(by, gateway)
    gateway.credentials.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    token = GATEWAY_TOKEN_PREFIX + secrets.token_urlsafe(32)
    credential = GatewayCredential.objects.create(
        gateway=gateway, prefix=token[:12], token_hash=hash_token(token), created_by=by
    )
    return credential, token


@transaction.atomic
def gateway_credential_revoke(*, credential: GatewayCredential, by: User) -> GatewayCredential:
    _require_manage(by, credential.gateway)
    if credential.revoked_at is None:
        credential.revoked_at = timezone.now()
        credential.save(update_fields=["revoked_at", "updated_at"])
    return credential


def gateway_authenticate(*, token: str) -> GatewayCredential | None:
    """The active credential for `token`, or None."""
    if not token.startswith(GATEWAY_TOKEN_PREFIX):
        return None
    credential = (
        GatewayCredential.objects.select_related("gateway")
        .filter(token_hash=hash_token(token), revoked_at__isnull=True)
        .first()
    )
    if credential is None:
        return None
    now = timezone.now()
    # at most one write a minute: gateways poll
    if credential.last_used_at is None or (now - credential.last_used_at).total_seconds() > 60:
        GatewayCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
    return credential


# --- What the gateway pulls and reports ------------------------------------------------------


def _node_refusal(node: FabricationNode) -> str:
    if node.status == FabricationNode.Status.DECOMMISSIONED:
        return "The node is decommissioned."
    if not node.is_approved:
        return "The node is not approved: it gets no device token."
    return ""


def gateway_document_body(*, gateway: Gateway) -> dict[str, Any]:
    current = NodeConfigProfile.objects.filter(node=OuterRef("pk")).order_by("-version")
    nodes = (
        FabricationNode.objects.filter(gateway=gateway)
        .annotate(current_config=Subquery(current.values("config")[:1], output_field=JSONField()))
        .order_by("pk")
    )
    release_id = gateway.rollout_release_id or gateway.software_release_id
    release = EdgeRelease.objects.filter(pk=release_id).first() if release_id else None
    return gateway_config.document_body(
        gateway_id=gateway.pk,
        name=gateway.name,
        forwarding={**gateway.forwarding, **gateway.rollout_overlay},
        nodes=[(n.pk, n.name, _node_refusal(n), n.current_config) for n in nodes],
        software=release_spec(release) if release is not None else None,
    )


@transaction.atomic
def gateway_config_current(*, gateway: Gateway) -> GatewayConfigVersion:
    """The gateway's configuration as of now: the latest stored version, or a new version when
    the platform's data changed since (nodes added or removed, a profile saved, settings)."""
    body = gateway_document_body(gateway=gateway)
    digest = gateway_config.digest_of(body)
    latest = gateway.config_versions.order_by("-version").first()
    if latest is not None and latest.digest == digest:
        return latest
    # A new version: under the gateway's row lock (it serialises numbering), from the row as it
    # is now. The caller's copy may predate a change committed since: a gateway's poll loads it
    # when its token is checked, and a rollout that handed it new software meanwhile had made
    # the version naming it; a document built from the stale copy became a newer version
    # without that software and took the rollout back (tests/edge/test_gateway_software.py,
    # seen once in CI).
    fresh = Gateway.objects.select_for_update().get(pk=gateway.pk)
    body = gateway_document_body(gateway=fresh)
    digest = gateway_config.digest_of(body)
    latest = gateway.config_versions.order_by("-version").first()
    if latest is not None and latest.digest == digest:
        return latest
    return GatewayConfigVersion.objects.create(
        gateway=gateway,
        version=(latest.version + 1) if latest else 1,
        digest=digest,
        document=body,
    )


def gateway_node_token_issue(*, gateway: Gateway, node_id: int) -> tuple[DeviceCredential, str]:
    """A device token for a node the gateway serves (earlier tokens of the node are revoked);
    the gateway keeps it on its disk. Any other node: refused as if it did not exist."""
    node = FabricationNode.objects.filter(pk=node_id, gateway=gateway).first()
    if node is None:
        raise PermissionDenied("This gateway does not serve that node.")
    refusal = _node_refusal(node)
    if refusal:
        raise Conflict(refusal)
    with transaction.atomic():
        return device_credential_create(node=node, by=None, label=f"gateway {gateway.name}")


@transaction.atomic
def gateway_status_report(
    *,
    gateway: Gateway,
    applied_version: int | None,
    error: str = "",
    health: dict[str, Any] | None = None,
    software_version: str = "",
) -> Gateway:
    if (
        applied_version is not None
        and not gateway.config_versions.filter(version=applied_version).exists()
    ):
        raise ValidationError({"applied_version": f"Version {applied_version} was never issued."})
    fields = {
        "applied_version": applied_version,
        "apply_error": error.strip(),
        "health": health or {},
        "software_version": software_version.strip(),
        "last_seen_at": timezone.now(),
    }
    # an update, not save(): a report every poll is not an audited change of the gateway
    Gateway.objects.filter(pk=gateway.pk).update(**fields, updated_at=fields["last_seen_at"])
    for key, value in fields.items():
        setattr(gateway, key, value)
    return gateway
