from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.exceptions import Conflict
from apps.core.models import Notification
from apps.core.realtime import broadcast_on_commit
from apps.core.services import notification_resolve, notification_send
from apps.notify.models import EventKind, Severity
from apps.notify.services import event_raise
from apps.users.models import Organization, User
from apps.users.roles import Action, Role, user_can
from apps.vendors import catalog
from apps.vendors.lifecycle import OPERATOR_TRANSITIONS, can_transition
from apps.vendors.models import (
    DeviceCredential,
    FabricationNode,
    NodeConfigProfile,
    NodeStatusChange,
    VendorProfile,
)
from apps.vendors.selectors import node_can_manage, node_is_operated_by

TOKEN_PREFIX = "imw_"
# what a node's vendor writes (register, update); the API's write serializer takes these
NODE_FIELDS = (
    "name",
    "site",
    "kind",
    "processes",
    "materials",
    "build_x_mm",
    "build_y_mm",
    "build_z_mm",
    "precision_mm",
    "latitude",
    "longitude",
    "software_version",
    "rated_power_kw",
    "requires_confirmation",
    "bed_clear_required",
)


def node_group(node_id: int) -> str:
    return f"node.{node_id}"


def _require_manage(user: User, node: FabricationNode) -> None:
    if not node_can_manage(user=user, node=node):
        raise PermissionDenied("Only the node's vendor or an admin may change it.")


def _clean_list(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValidationError({field: "Give a list of non-empty names."})
    return sorted({v.strip() for v in value})


def _catalogue_list(value: Any, field: str) -> list[str]:
    """A node's processes or materials as catalogue codes; any spelling the catalogue knows
    is accepted, anything else is refused with the valid codes."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValidationError({field: "Give a list of non-empty names."})
    kind = "process" if field == "processes" else "material"
    codes, unknown = catalog.codes_clean(value, kind=kind)
    if unknown:
        raise ValidationError({field: catalog.unknown_message(kind, *unknown)})
    return codes


# --- Vendor profile --------------------------------------------------------------------------


def vendor_profile_get_or_create(*, organization: Organization) -> VendorProfile:
    if organization.kind != Organization.Kind.VENDOR:
        raise ValidationError("Only vendor companies have a vendor profile.")
    profile, _ = VendorProfile.objects.get_or_create(organization=organization)
    return profile


@transaction.atomic
def vendor_profile_update(*, profile: VendorProfile, by: User, **fields: Any) -> VendorProfile:
    allowed = {
        "description",
        "certifications",
        "contact_name",
        "contact_email",
        "contact_phone",
        "website",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"Not editable: {', '.join(sorted(unknown))}.")
    if "certifications" in fields:
        fields["certifications"] = _clean_list(fields["certifications"], "certifications")
    for key, value in fields.items():
        setattr(profile, key, value)
    if (
        profile.verification_status == VendorProfile.Verification.UNVERIFIED
        and profile.certifications
    ):
        profile.verification_status = VendorProfile.Verification.PENDING
        fields["verification_status"] = profile.verification_status
    profile.full_clean()
    profile.save(update_fields=[*fields, "updated_at"])
    return profile


@transaction.atomic
def vendor_profile_verify(
    *, profile: VendorProfile, by: User, verified: bool, comment: str = ""
) -> VendorProfile:
    if not user_can(by, Action.SYSTEM_ADMIN):
        raise PermissionDenied("Only admins verify vendors.")
    profile.verification_status = (
        VendorProfile.Verification.VERIFIED if verified else VendorProfile.Verification.REJECTED
    )
    profile.save(update_fields=["verification_status", "updated_at"])
    return profile


# --- Registration and approval ---------------------------------------------------------------


def _notify_admins(*, title: str, body: str, link: str) -> None:
    for admin in User.objects.filter(role=Role.ADMIN, is_active=True):
        notification_send(user=admin, title=title, body=body, link=link)


def _notify_vendor(*, node: FabricationNode, title: str, body: str, level: str) -> None:
    for user in User.objects.filter(memberships__organization=node.vendor, is_active=True):
        notification_send(
            user=user, title=title, body=body, level=level, link=f"/vendor/nodes/{node.pk}/"
        )


def _approval_link(node: FabricationNode) -> str:
    """Where the admins' "awaiting approval" notice of `node` points: its entry in the queue.
    Unique per node, so the decision can find the notices it answers."""
    return f"/ops/approvals/#node-{node.pk}"


@transaction.atomic
def node_register(*, by: User, vendor: Organization, **fields: Any) -> FabricationNode:
    if vendor.kind != Organization.Kind.VENDOR:
        raise ValidationError({"vendor": "Nodes belong to vendor companies."})
    if not user_can(by, Action.NODE_MANAGE) or (
        not user_can(by, Action.SYSTEM_ADMIN) and not vendor.memberships.filter(user=by).exists()
    ):
        raise PermissionDenied("You may register nodes only for your own vendor company.")
    unknown = set(fields) - set(NODE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}.")
    if FabricationNode.objects.filter(vendor=vendor, name__iexact=fields.get("name", "")).exists():
        raise Conflict("This vendor already has a node with this name.", field="name")
    for key in ("processes", "materials"):
        if key in fields:
            fields[key] = _catalogue_list(fields[key], key)
    node = FabricationNode(vendor=vendor, registered_by=by, **fields)
    node.full_clean()
    node.save()
    NodeStatusChange.objects.create(
        node=node, from_status="", to_status=node.status, by=by, reason="Registered"
    )
    _notify_admins(
        title=f"Node awaiting approval: {node.name}",
        body=f"{vendor.name} registered this {node.get_kind_display()}.",
        link=_approval_link(node),
    )
    event_raise(
        kind=EventKind.NODE_AWAITING_APPROVAL,
        severity=Severity.INFO,
        title=f"Node awaiting approval: {node.name}",
        body=f"{vendor.name} registered this {node.get_kind_display()}.",
        link=_approval_link(node),
        subject=f"node:{node.pk}",
        users=User.objects.filter(role=Role.ADMIN, is_active=True),
    )
    return node


@transaction.atomic
def node_update(*, node: FabricationNode, by: User, **fields: Any) -> FabricationNode:
    _require_manage(by, node)
    unknown = set(fields) - set(NODE_FIELDS)
    if unknown:
        raise ValidationError(f"Not editable here: {', '.join(sorted(unknown))}.")
    if node.status == FabricationNode.Status.DECOMMISSIONED:
        raise ValidationError("A decommissioned node cannot be changed.")
    if (
        "name" in fields
        and FabricationNode.objects.filter(vendor=node.vendor, name__iexact=fields["name"])
        .exclude(pk=node.pk)
        .exists()
    ):
        raise Conflict("This vendor already has a node with this name.", field="name")
    for key in ("processes", "materials"):
        if key in fields:
            fields[key] = _catalogue_list(fields[key], key)
    for key, value in fields.items():
        setattr(node, key, value)
    node.full_clean()
    node.save(update_fields=[*fields, "updated_at"])
    return node


@transaction.atomic
def node_decide(
    *, node: FabricationNode, by: User, approve: bool, comment: str = ""
) -> FabricationNode:
    """An admin approves or rejects a registered node; the vendor is told either way."""
    if not user_can(by, Action.SYSTEM_ADMIN):
        raise PermissionDenied("Only admins approve or reject nodes.")
    node = FabricationNode.objects.select_for_update().get(pk=node.pk)
    if node.approval != FabricationNode.Approval.PENDING:
        raise Conflict(f"This node was already {node.get_approval_display().lower()}.")
    if not approve and not comment.strip():
        raise ValidationError({"comment": "Say why the node is rejected."})
    node.approval = (
        FabricationNode.Approval.APPROVED if approve else FabricationNode.Approval.REJECTED
    )
    node.approval_comment = comment.strip()
    node.approved_by = by
    node.approved_at = timezone.now()
    node.save(
        update_fields=["approval", "approval_comment", "approved_by", "approved_at", "updated_at"]
    )
    verdict = "approved" if approve else "rejected"
    # the admins were asked to decide: their notices now say it is done, and by whom
    notification_resolve(
        link=_approval_link(node),
        title=f"Node {verdict}: {node.name}",
        body=f"{node.vendor.name} registered this {node.get_kind_display()}; "
        f"{by.full_name or by.email} {verdict} it.",
    )
    _notify_vendor(
        node=node,
        title=f"Node {node.name} {verdict}",
        body=comment
        or ("It can now be configured, take work and stream telemetry." if approve else ""),
        level=Notification.Level.SUCCESS if approve else Notification.Level.WARNING,
    )
    return node


@transaction.atomic
def node_bed_clear(*, node: FabricationNode, by: User | None) -> FabricationNode:
    """The bed of a printer that waits after a part is clear: it may take its next part.
    `by=None` is the printer itself (its device token: a part ejector, a belt)."""
    node = FabricationNode.objects.select_for_update().get(pk=node.pk)
    if (
        by is not None
        and not node_can_manage(user=by, node=node)
        and not node_is_operated_by(user=by, node=node)
    ):
        raise PermissionDenied("You may not confirm this node's bed is clear.")
    if node.bed_clear_pending_since is None:
        raise Conflict("The bed is not waiting to be cleared.")
    node.bed_clear_pending_since = None
    node.save(update_fields=["bed_clear_pending_since", "updated_at"])
    broadcast_on_commit(f"node.{node.pk}", {"type": "node.bed_clear", "node": node.pk})
    return node


@transaction.atomic
def node_transition(
    *, node: FabricationNode, to: str, by: User | None, reason: str
) -> FabricationNode:
    """Move a node along its lifecycle. `by=None` is the platform itself (scheduler, work API)."""
    node = FabricationNode.objects.select_for_update().get(pk=node.pk)
    target = FabricationNode.Status(to)
    if not reason.strip():
        raise ValidationError({"reason": "Say why the status changes."})
    operator_move = (node.status, target) in OPERATOR_TRANSITIONS
    if (
        by is not None
        and not node_can_manage(user=by, node=node)
        and not (operator_move and node_is_operated_by(user=by, node=node))
    ):
        raise PermissionDenied("You may not change this node's status.")
    if not can_transition(node.status, target):
        raise Conflict(
            f"A node cannot go from {node.get_status_display().lower()} to {target.label.lower()}.",
            details={"from": node.status, "to": target.value},
        )
    if (
        target in {FabricationNode.Status.IDLE, FabricationNode.Status.ASSIGNED}
        and not node.is_approved
    ):
        raise Conflict("Only approved nodes can take work.", details={"approval": node.approval})
    if target == FabricationNode.Status.CONFIGURED and not node.configs.exists():
        raise Conflict("Save a configuration profile first.")
    previous = node.status
    node.status = target
    node.save(update_fields=["status", "updated_at"])
    NodeStatusChange.objects.create(
        node=node, from_status=previous, to_status=target, by=by, reason=reason.strip()
    )
    broadcast_on_commit(
        node_group(node.pk),
        {
            "type": "node.status",
            "node": node.pk,
            "from": previous,
            "to": target.value,
            "reason": reason,
        },
    )
    return node


# --- Config profiles -------------------------------------------------------------------------


@transaction.atomic
def node_config_save(
    *,
    node: FabricationNode,
    by: User,
    config: dict[str, Any],
    message: str = "",
    rolled_back_from: int | None = None,
) -> NodeConfigProfile:
    _require_manage(by, node)
    if not isinstance(config, dict):
        raise ValidationError({"config": "The configuration must be a JSON object."})
    node = FabricationNode.objects.select_for_update().get(pk=node.pk)  # serialises version numbers
    current = node.configs.order_by("-version").first()
    if current is not None and current.config == config:
        raise Conflict("Nothing changed: this is the current configuration.")
    profile = NodeConfigProfile.objects.create(
        node=node,
        version=(current.version + 1) if current else 1,
        config=config,
        message=message.strip(),
        author=by,
        rolled_back_from=rolled_back_from,
    )
    if node.status == FabricationNode.Status.REGISTERED:
        node_transition(
            node=node,
            to=FabricationNode.Status.CONFIGURED,
            by=by,
            reason=f"Configuration v{profile.version} saved",
        )
    return profile


def node_config_rollback(*, node: FabricationNode, by: User, version: int) -> NodeConfigProfile:
    target = node.configs.filter(version=version).first()
    if target is None:
        raise ValidationError({"version": f"Version {version} does not exist."})
    return node_config_save(
        node=node,
        by=by,
        config=target.config,
        message=f"Rollback to v{version}",
        rolled_back_from=version,
    )


# --- Device credentials ----------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def device_credential_issue(
    *, node: FabricationNode, by: User, label: str = ""
) -> tuple[DeviceCredential, str]:
    """A new device token for the node; earlier active tokens are revoked (rotation). The raw
    token is returned once and never stored."""
    _require_manage(by, node)
    if not node.is_approved:
        raise Conflict("Only approved nodes get device credentials.")
    if node.status == FabricationNode.Status.DECOMMISSIONED:
        raise Conflict("A decommissioned node gets no credentials.")
    return device_credential_create(node=node, by=by, label=label)


def device_credential_create(
    *, node: FabricationNode, by: User | None, label: str
) -> tuple[DeviceCredential, str]:
    """The issuing itself, once the caller's right is checked (by a person: device_credential_
    issue; by the node's managed gateway: gateway_node_token_issue). Earlier tokens are revoked."""
    now = timezone.now()
    node.device_credentials.filter(revoked_at__isnull=True).update(revoked_at=now)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    credential = DeviceCredential.objects.create(
        node=node,
        prefix=token[:12],
        token_hash=hash_token(token),
        label=label.strip()[:100],
        created_by=by,
    )
    return credential, token


@transaction.atomic
def device_credential_revoke(*, credential: DeviceCredential, by: User) -> DeviceCredential:
    _require_manage(by, credential.node)
    if credential.revoked_at is None:
        credential.revoked_at = timezone.now()
        credential.save(update_fields=["revoked_at", "updated_at"])  # audited as an update
    return credential


def device_authenticate(*, token: str) -> DeviceCredential | None:
    """The active credential of an approved, working node for `token`, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    credential = (
        DeviceCredential.objects.select_related("node")
        .filter(token_hash=hash_token(token), revoked_at__isnull=True)
        .first()
    )
    if credential is None:
        return None
    node = credential.node
    if not node.is_approved or node.status == FabricationNode.Status.DECOMMISSIONED:
        return None
    now = timezone.now()
    # At most one write a minute per credential: this runs on every ingest request.
    if credential.last_used_at is None or (now - credential.last_used_at).total_seconds() > 60:
        DeviceCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
    return credential
