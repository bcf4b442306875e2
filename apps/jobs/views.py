from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.exceptions import Conflict
from apps.jobs.forms import CancelForm, JobForm, PartFormSet, PriorityForm
from apps.jobs.models import Status
from apps.jobs.selectors import job_can_change, job_get_for_user, job_list, vendor_work
from apps.jobs.services import (
    cad_file_upload,
    job_cancel,
    job_estimate_preview,
    job_set_priority,
    job_submit,
)
from apps.portal.access import action_required, portal_required
from apps.users.roles import Action, user_can
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.models import FabricationNode


def _error_text(exc: Exception) -> list[str]:
    if isinstance(exc, Conflict):
        return [exc.message]
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return [f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()]
    if isinstance(exc, ValidationError):
        return list(exc.messages)
    return [str(exc)]


@login_required
@action_required(Action.JOB_VIEW)
def job_list_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    jobs = job_list(user=request.user).prefetch_related("parts")
    status = request.GET.get("status", "")
    search = request.GET.get("q", "").strip()
    if status in Status.values:
        jobs = jobs.filter(status=status)
    if search:
        jobs = jobs.filter(title__icontains=search)
    page = Paginator(jobs, 20).get_page(request.GET.get("page"))
    query = "&".join(f"{k}={v}" for k, v in (("status", status), ("q", search)) if v)
    return render(
        request,
        "jobs/job_list.html",
        {
            "page": page,
            "status": status,
            "q": search,
            "statuses": Status.choices,
            "query": query,
            "can_create": user_can(request.user, Action.JOB_CREATE),
        },
    )


def _parts_from(formset: Any, request: AuthenticatedHttpRequest) -> list[dict[str, Any]]:
    """Uploads new CAD files (kept by id for the next step) and returns the part dicts."""
    parts = []
    for index, form in enumerate(formset.forms):
        data = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
        upload = data.pop("cad_upload", None)
        if upload is not None:
            declared = tuple(data.get(f"size_{a}_mm") for a in "xyz")
            try:
                cad = cad_file_upload(
                    by=request.user,
                    name=upload.name,
                    data=upload.read(),
                    declared_mm=declared if all(declared) else None,  # type: ignore[arg-type]
                )
            except ValidationError as exc:
                raise ValidationError({f"parts[{index}]": _error_text(exc)}) from None
            data["cad_file"] = cad.pk
            form.data = form.data.copy()
            form.data[f"{form.prefix}-cad_file"] = cad.pk
        parts.append(data)
    return parts


@login_required
@action_required(Action.JOB_CREATE)
def job_submit_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Two steps on one page: enter the parts and see feasibility and the estimate, then
    confirm. Uploaded files are measured at the first step and kept for the second."""
    job_form = JobForm(request.POST or None)
    formset = PartFormSet(request.POST or None, request.FILES or None, prefix="parts")
    estimate = None
    errors: list[str] = []
    if request.method == "POST" and job_form.is_valid() and formset.is_valid():
        try:
            parts = _parts_from(formset, request)
            if request.POST.get("step") == "confirm":
                job = job_submit(by=request.user, parts=parts, **job_form.cleaned_data)
                messages.success(request, f"Job {job.pk} submitted; the scheduler is placing it.")
                return redirect("jobs:detail", pk=job.pk)
            estimate = job_estimate_preview(by=request.user, parts=parts)
        except (ValidationError, Conflict, PermissionDenied) as exc:
            errors = _error_text(exc)
    status = 400 if errors or job_form.errors or formset.total_error_count() else 200
    if request.method == "GET":
        status = 200
    return render(
        request,
        "jobs/job_submit.html",
        {"job_form": job_form, "formset": formset, "estimate": estimate, "errors": errors},
        status=status,
    )


@login_required
@action_required(Action.JOB_VIEW)
def job_detail_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    job = job_get_for_user(user=request.user, pk=pk)
    parts = list(job.parts.select_related("assigned_node", "cad_file"))
    node_ids = {
        c["node"] for p in parts for c in (p.estimates.get("schedule") or {}).get("candidates", [])
    }
    names = dict(FabricationNode.objects.filter(pk__in=node_ids).values_list("pk", "name"))
    for part in parts:
        plan = part.estimates.get("schedule") or {}
        part.plan = {  # type: ignore[attr-defined]
            **plan,
            "candidates": [
                {**c, "node_name": names.get(c["node"], c["node"])}
                for c in plan.get("candidates", [])
            ],
        }
    can_change = job_can_change(user=request.user, job=job) and not job.is_final
    return render(
        request,
        "jobs/job_detail.html",
        {
            "job": job,
            "parts": parts,
            "history": job.history.select_related("by", "part")[:100],
            "can_change": can_change,
            "cancel_form": CancelForm(),
            "priority_form": PriorityForm(initial={"priority": job.priority}),
        },
    )


@require_POST
@login_required
@action_required(Action.JOB_CREATE)
def job_cancel_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    job = job_get_for_user(user=request.user, pk=pk)
    form = CancelForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the job is cancelled.")
    else:
        try:
            job_cancel(job=job, by=request.user, reason=form.cleaned_data["reason"])
            messages.success(request, "Job cancelled.")
        except (ValidationError, Conflict) as exc:
            messages.error(request, "; ".join(_error_text(exc)))
    return redirect("jobs:detail", pk=pk)


@require_POST
@login_required
@action_required(Action.JOB_CREATE)
def job_priority_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    job = job_get_for_user(user=request.user, pk=pk)
    form = PriorityForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Priority is a whole number from 1 to 10.")
    else:
        try:
            job_set_priority(job=job, by=request.user, priority=form.cleaned_data["priority"])
            messages.success(request, "Priority changed.")
        except (ValidationError, Conflict) as exc:
            messages.error(request, "; ".join(_error_text(exc)))
    return redirect("jobs:detail", pk=pk)


@portal_required("vendor")
def vendor_work_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The work on the caller's machines: queued and running parts per node, and how busy each
    node was over the last 7 days."""
    return render(request, "jobs/vendor_work.html", {"rows": vendor_work(user=request.user)})
