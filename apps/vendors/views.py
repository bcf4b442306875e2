from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core.exceptions import Conflict
from apps.users.access import action_required, portal_required
from apps.users.roles import Action
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.forms import (
    ConfigForm,
    DecisionForm,
    NodeForm,
    NodeSettingsForm,
    TransitionForm,
    VendorProfileForm,
)
from apps.vendors.lifecycle import ALLOWED_TRANSITIONS
from apps.vendors.models import DeviceCredential, FabricationNode
from apps.vendors.node_commands import (
    node_can_command,
    node_command_allowed,
    node_command_list,
)
from apps.vendors.selectors import (
    config_diff,
    credential_list,
    node_can_manage,
    node_config_current,
    node_get_for_user,
    node_list,
    node_shows_private_details,
    pending_node_list,
    vendor_organizations_for,
)
from apps.vendors.services import (
    device_credential_issue,
    device_credential_revoke,
    node_bed_clear,
    node_config_rollback,
    node_config_save,
    node_decide,
    node_register,
    node_transition,
    node_update,
    vendor_profile_get_or_create,
    vendor_profile_update,
)


def _message(exc: Exception) -> str:
    if isinstance(exc, Conflict):
        return exc.message
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc)


def _errors_to_form(form: forms.BaseForm, exc: Exception) -> None:
    if isinstance(exc, Conflict):
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    elif isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, str(getattr(exc, "message", exc)))


def _managed_nodes(request: AuthenticatedHttpRequest) -> QuerySet[FabricationNode]:
    vendors = vendor_organizations_for(user=request.user)
    return node_list(user=request.user).filter(vendor__in=vendors)


@portal_required("vendor")
def node_list_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    qs = _managed_nodes(request)
    status = request.GET.get("status", "")
    if status in FabricationNode.Status.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "vendors/node_list.html",
        {
            "page": page,
            "status": status,
            "statuses": FabricationNode.Status.choices,
            "query": f"status={status}" if status else "",
        },
    )


@portal_required("vendor")
@action_required(Action.NODE_MANAGE)
def node_register_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    vendors = vendor_organizations_for(user=request.user)
    if not vendors.exists():
        raise PermissionDenied("You are not a member of any vendor company.")
    form = NodeForm(request.POST or None, vendors=vendors)
    if request.method == "POST" and form.is_valid():
        fields = {k: v for k, v in form.cleaned_data.items() if k != "vendor"}
        try:
            node = node_register(by=request.user, vendor=form.cleaned_data["vendor"], **fields)
        except (Conflict, ValidationError) as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(
                request, f"{node.name} is registered and waits for an admin's approval."
            )
            _warn_capabilities(request, node)
            return redirect("vendors:node-detail", pk=node.pk)
    return render(
        request, "vendors/node_form.html", {"form": form}, status=400 if form.errors else 200
    )


def _warn_capabilities(request: AuthenticatedHttpRequest, node: FabricationNode) -> None:
    for problem in node.capability_problems:
        messages.warning(request, f"{node.name}: {problem}")


@portal_required("vendor")
@action_required(Action.NODE_MANAGE)
def node_edit_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    node = node_get_for_user(user=request.user, pk=pk)
    if not node_can_manage(user=request.user, node=node):
        raise PermissionDenied("Only the node's vendor or an admin may change it.")
    form = NodeForm(request.POST or None, instance=node)
    if request.method == "POST" and form.is_valid():
        changed = {name: form.cleaned_data[name] for name in form.changed_data}
        node.refresh_from_db()  # the form wrote into it; the service starts from the row
        try:
            node = node_update(node=node, by=request.user, **changed)
        except (Conflict, ValidationError) as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(request, f"{node.name} saved.")
            _warn_capabilities(request, node)
            return redirect("vendors:node-detail", pk=node.pk)
    return render(
        request,
        "vendors/node_form.html",
        {"form": form, "node": node},
        status=400 if form.errors else 200,
    )


@portal_required("vendor")
def node_detail_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    node = node_get_for_user(user=request.user, pk=pk)
    return _detail_page(request, node)


def _detail_page(
    request: AuthenticatedHttpRequest,
    node: FabricationNode,
    settings_form: NodeSettingsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    can_manage = node_can_manage(user=request.user, node=node)
    configs = list(node.configs.select_related("author")[:20])
    diff = None
    if can_manage and request.GET.get("from") and request.GET.get("to"):
        by_version = {c.version: c for c in node.configs.all()}
        try:
            old, new = by_version[int(request.GET["from"])], by_version[int(request.GET["to"])]
        except (KeyError, ValueError):
            messages.error(request, "Pick two existing versions to compare.")
        else:
            diff = {
                "from": old.version,
                "to": new.version,
                "changes": config_diff(old=old.config, new=new.config),
            }
    choices = [
        (s, FabricationNode.Status(s).label) for s in sorted(ALLOWED_TRANSITIONS[node.status])
    ]
    show_private = node_shows_private_details(user=request.user, node=node)
    return render(
        request,
        "vendors/node_detail.html",
        {
            "node": node,
            "can_manage": can_manage,
            "show_private": show_private,
            "status_log": node.status_log.select_related("by")[:20],
            "configs": configs,
            "diff": diff,
            "transition_form": TransitionForm(choices=choices) if choices else None,
            "config_form": ConfigForm(
                initial={"config": _pretty(configs[0].config) if configs else "{}"}
            ),
            "settings_form": settings_form
            or NodeSettingsForm(kind=node.kind, config=configs[0].config if configs else {}),
            "credentials": credential_list(node=node) if can_manage else [],
            "commands": list(node_command_list(node=node)[:20]) if show_private else [],
            "can_command": node_can_command(user=request.user, node=node),
            "allowed": node_command_allowed(node=node),
            "new_token": request.session.pop(f"new-token-{node.pk}", None),
        },
        status=status,
    )


def _pretty(value: object) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=True)


@require_POST
@portal_required("vendor")
def node_transition_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    node = node_get_for_user(user=request.user, pk=pk)
    choices = [(s, s) for s in ALLOWED_TRANSITIONS[node.status]]
    form = TransitionForm(request.POST, choices=choices)
    if not form.is_valid():
        messages.error(request, "Choose a status the node may move to, and say why.")
    else:
        try:
            node_transition(
                node=node,
                by=request.user,
                to=form.cleaned_data["to"],
                reason=form.cleaned_data["reason"],
            )
        except Conflict as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Status changed.")
    return redirect("vendors:node-detail", pk=pk)


@require_POST
@portal_required("vendor")
def node_bed_clear_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    node = node_get_for_user(user=request.user, pk=pk)
    try:
        node_bed_clear(node=node, by=request.user)
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Bed confirmed clear: the printer takes its next part.")
    return redirect("vendors:node-detail", pk=pk)


@require_POST
@portal_required("vendor")
def node_config_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Saves a new configuration version from the node kind's settings form, or, the advanced
    option, from the whole document as JSON (a `config` field)."""
    node = node_get_for_user(user=request.user, pk=pk)
    if "config" not in request.POST:
        return _node_settings_save(request, node)
    form = ConfigForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(map(str, form.errors.get("config") or ["Check it."])))
        return redirect("vendors:node-detail", pk=pk)
    try:
        profile = node_config_save(node=node, by=request.user, **form.cleaned_data)
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Configuration v{profile.version} saved.")
    return redirect("vendors:node-detail", pk=pk)


def _node_settings_save(request: AuthenticatedHttpRequest, node: FabricationNode) -> HttpResponse:
    current = node_config_current(node=node)
    form = NodeSettingsForm(request.POST, kind=node.kind, config=current.config if current else {})
    if not form.is_valid():
        messages.error(request, "The settings were not saved: see the fields marked below.")
        return _detail_page(request, node, settings_form=form, status=400)
    try:
        profile = node_config_save(
            node=node, by=request.user, config=form.config(), message=form.cleaned_data["message"]
        )
    except Conflict as exc:
        messages.error(request, exc.message)
    except ValidationError as exc:
        _errors_to_form(form, exc)
        return _detail_page(request, node, settings_form=form, status=400)
    else:
        messages.success(request, f"Settings saved as configuration v{profile.version}.")
    return redirect("vendors:node-detail", pk=node.pk)


@require_POST
@portal_required("vendor")
def node_config_rollback_view(
    request: AuthenticatedHttpRequest, pk: int, version: int
) -> HttpResponse:
    node = node_get_for_user(user=request.user, pk=pk)
    try:
        profile = node_config_rollback(node=node, by=request.user, version=version)
    except (Conflict, ValidationError) as exc:
        messages.error(request, _message(exc))
    else:
        messages.success(
            request, f"Rolled back: v{profile.version} has the settings of v{version}."
        )
    return redirect("vendors:node-detail", pk=pk)


@require_POST
@portal_required("vendor")
def credential_issue_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    node = node_get_for_user(user=request.user, pk=pk)
    try:
        _credential, token = device_credential_issue(
            node=node, by=request.user, label=request.POST.get("label", "")
        )
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        # Shown once on the next page, then gone from the session.
        request.session[f"new-token-{node.pk}"] = token
    return redirect("vendors:node-detail", pk=pk)


@require_POST
@portal_required("vendor")
def credential_revoke_view(
    request: AuthenticatedHttpRequest, pk: int, credential_id: int
) -> HttpResponse:
    node = node_get_for_user(user=request.user, pk=pk)
    credential = get_object_or_404(DeviceCredential, pk=credential_id, node=node)
    device_credential_revoke(credential=credential, by=request.user)
    messages.success(
        request, f"Token {credential.prefix}… revoked; gateways using it are refused now."
    )
    return redirect("vendors:node-detail", pk=pk)


@portal_required("vendor")
def vendor_profile_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    vendors = vendor_organizations_for(user=request.user)
    organization = vendors.filter(pk=request.GET.get("org") or 0).first() or vendors.first()
    if organization is None:
        raise PermissionDenied("You are not a member of any vendor company.")
    profile = vendor_profile_get_or_create(organization=organization)
    form = VendorProfileForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        changed = {name: form.cleaned_data[name] for name in form.changed_data}
        profile.refresh_from_db()
        try:
            vendor_profile_update(profile=profile, by=request.user, **changed)
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(request, "Profile saved.")
            return redirect("vendors:profile")
    return render(
        request,
        "vendors/profile.html",
        {"form": form, "profile": profile},
        status=400 if form.errors else 200,
    )


@portal_required("ops")
@action_required(Action.SYSTEM_ADMIN)
def approval_queue_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    page = Paginator(pending_node_list(), 25).get_page(request.GET.get("page"))
    return render(request, "vendors/approvals.html", {"page": page, "form": DecisionForm()})


@require_POST
@portal_required("ops")
@action_required(Action.SYSTEM_ADMIN)
def approval_decide_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    node = get_object_or_404(FabricationNode, pk=pk)
    form = DecisionForm(request.POST)
    form.is_valid()
    approve = request.POST.get("decision") == "approve"
    try:
        node_decide(
            node=node,
            by=request.user,
            approve=approve,
            comment=form.cleaned_data.get("comment", ""),
        )
    except (Conflict, ValidationError) as exc:
        messages.error(request, f"{node.name}: {_message(exc)}")
    else:
        messages.success(request, f"{node.name} {'approved' if approve else 'rejected'}.")
    return redirect("vendors:approvals")
