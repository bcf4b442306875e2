from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from apps.core.exceptions import Conflict, error_messages
from apps.jobs import providers
from apps.jobs.forms import (
    CancelForm,
    JobForm,
    PartFormSet,
    PriorityForm,
    SaveTemplateForm,
    UseTemplateForm,
    WorkHistoryFilterForm,
    materials_by_process,
)
from apps.jobs.models import Job, Status
from apps.jobs.selectors import (
    cad_files_of,
    job_can_change,
    job_get_for_user,
    job_list,
    part_placements,
    template_get_for_user,
    template_list,
    vendor_nodes,
    vendor_part_get_for_user,
    vendor_work,
    vendor_work_history,
)
from apps.jobs.services import (
    cad_file_upload,
    job_cancel,
    job_estimate_preview,
    job_set_priority,
    job_submit,
    part_accept,
    part_decline,
    part_has_other_nodes,
    template_delete,
    template_from_job,
    template_instantiate,
)
from apps.users.access import action_required, portal_required
from apps.users.roles import Action, user_can
from apps.users.types import AuthenticatedHttpRequest


def _form_problems(form: Any) -> str:
    return "; ".join(f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items())


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
            x, y, z = (data.get(f"size_{a}_mm") for a in "xyz")
            try:
                cad = cad_file_upload(
                    by=request.user,
                    name=upload.name,
                    data=upload.read(),
                    declared_mm=(x, y, z) if x and y and z else None,
                )
            except ValidationError as exc:
                raise ValidationError({f"parts[{index}]": error_messages(exc)}) from None
            data["cad_file"] = cad.pk
            form.data = form.data.copy()
            form.data[f"{form.prefix}-cad_file"] = cad.pk
        parts.append(data)
    return parts


def _show_kept_uploads(formset: Any, request: AuthenticatedHttpRequest) -> None:
    """Each part form's kept upload (its `cad_file` token, when it is the user's own upload),
    as `form.kept_cad`: the page names the file with what was measured in it. A browser
    empties a file input on every page load, so the kept upload is what carries the model to
    the next step, and the designer needs to see that it did."""
    if not formset.is_bound:
        return
    tokens = {}
    for form in formset.forms:
        raw = str(form.data.get(f"{form.prefix}-cad_file") or "").strip()
        if raw.isdigit():
            tokens[form.prefix] = int(raw)
    kept = cad_files_of(user=request.user, ids=list(tokens.values()))
    for form in formset.forms:
        cad = form.kept_cad = kept.get(tokens.get(form.prefix, 0))
        if cad is not None:  # the empty size fields say what the estimate uses instead
            for axis in "xyz":
                measured = getattr(cad, f"size_{axis}_mm")
                form.fields[f"size_{axis}_mm"].widget.attrs["placeholder"] = (
                    f"{measured:g} measured"
                )


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
            estimate = job_estimate_preview(by=request.user, parts=parts, **job_form.run_fields())
        except (ValidationError, Conflict, PermissionDenied) as exc:
            errors = error_messages(exc)
    status = 400 if errors or job_form.errors or formset.total_error_count() else 200
    if request.method == "GET":
        status = 200
    _show_kept_uploads(formset, request)
    earliest = (estimate or {}).get("earliest_completion")
    for row in ((estimate or {}).get("plan") or {}).get("parts", []):
        for key in ("start_at", "finish_at"):
            if row.get(key):
                row[key] = datetime.fromisoformat(row[key])
    return render(
        request,
        "jobs/job_submit.html",
        {
            "job_form": job_form,
            "formset": formset,
            "estimate": estimate,
            "errors": errors,
            "earliest_completion": datetime.fromisoformat(earliest) if earliest else None,
            "materials_by_process": materials_by_process(),
        },
        status=status,
    )


def _job_page_context(request: AuthenticatedHttpRequest, job: Job) -> dict[str, Any]:
    """What the job page and its live panels show (the same for both, so a panel re-fetched
    on a live event is the panel a reload would render)."""
    parts = list(job.parts.select_related("assigned_node", "cad_file"))
    placements = list(zip(parts, part_placements(parts), strict=True))
    can_change = job_can_change(user=request.user, job=job) and not job.is_final
    return {
        "job": job,
        "parts": parts,
        "placements": placements,  # (part, why it went where it did) pairs
        "history": job.history.select_related("by", "part")[:100],
        "can_change": can_change,
        "cancel_form": CancelForm(),
        "priority_form": PriorityForm(initial={"priority": job.priority}),
        "can_save_template": user_can(request.user, Action.JOB_CREATE),
        "template_form": SaveTemplateForm(initial={"name": job.title}),
        # panels other apps add (material used, energy and carbon), rendered with their own
        # context; render_to_string returns safe HTML
        "panels": [
            render_to_string(name, panel, request=request)
            for name, panel in providers.job_panels(job, request.user)
        ],
    }


@login_required
@action_required(Action.JOB_VIEW)
def job_detail_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    job = job_get_for_user(user=request.user, pk=pk)
    return render(request, "jobs/job_detail.html", _job_page_context(request, job))


@login_required
@action_required(Action.JOB_VIEW)
def job_live_panels_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The job page's changing panels, for the page to swap in on a live event; who may not
    see the job gets 404 as on the page."""
    job = job_get_for_user(user=request.user, pk=pk)
    return render(request, "jobs/job_live_panels.html", _job_page_context(request, job))


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
            messages.error(request, "; ".join(error_messages(exc)))
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
            messages.error(request, "; ".join(error_messages(exc)))
    return redirect("jobs:detail", pk=pk)


@portal_required("vendor")
def vendor_work_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The work on the caller's machines: queued and running parts per node, and how busy each
    node was over the last 7 days."""
    return render(request, "jobs/vendor_work.html", {"rows": vendor_work(user=request.user)})


@portal_required("vendor")
def vendor_work_history_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Parts that ended on the caller's machines, with filters and pages."""
    nodes = [(n.pk, n.name) for n in vendor_nodes(user=request.user).order_by("name")]
    form = WorkHistoryFilterForm(request.GET or None, nodes=nodes)
    filters: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = {
            "node_id": data["node"],
            "status": data["status"],
            "finished_from": data["finished_from"],
            "finished_to": data["finished_to"],
            "search": data["q"],
        }
    parts = vendor_work_history(user=request.user, **filters)
    page = Paginator(parts, 25).get_page(request.GET.get("page"))
    query = urlencode(
        [(k, v) for k, v in request.GET.items() if k != "page" and v and k in form.fields]
    )
    return render(
        request,
        "jobs/vendor_work_history.html",
        {"form": form, "page": page, "query": query, "has_nodes": bool(nodes)},
        status=400 if form.is_bound and form.errors else 200,
    )


@require_POST
@portal_required("vendor")
@action_required(Action.NODE_MANAGE)
def vendor_part_accept_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    part = vendor_part_get_for_user(user=request.user, pk=pk)
    try:
        part_accept(by=request.user, part=part)
        messages.success(request, f"Accepted {part.name} (job #{part.job_id}).")
    except (ValidationError, Conflict, PermissionDenied) as exc:
        messages.error(request, "; ".join(error_messages(exc)))
    return redirect("jobs:vendor-work")


@require_POST
@portal_required("vendor")
@action_required(Action.NODE_MANAGE)
def vendor_part_decline_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    part = vendor_part_get_for_user(user=request.user, pk=pk)
    try:
        part = part_decline(by=request.user, part=part, reason=request.POST.get("reason", ""))
        elsewhere = (
            "the scheduler places it on another node"
            if part_has_other_nodes(part)
            else "no other node can make it now, so it waits; the designer is told"
        )
        messages.success(request, f"Declined {part.name}: {elsewhere}.")
    except (ValidationError, Conflict, PermissionDenied) as exc:
        messages.error(request, "; ".join(error_messages(exc)))
    return redirect("jobs:vendor-work")


# --- Templates -----------------------------------------------------------------------------------


@login_required
@action_required(Action.JOB_VIEW)
def template_list_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    templates = template_list(user=request.user).select_related("owner", "organization")
    search = request.GET.get("q", "").strip()
    if search:
        templates = templates.filter(name__icontains=search)
    page = Paginator(templates.order_by("name", "id"), 20).get_page(request.GET.get("page"))
    return render(
        request,
        "jobs/template_list.html",
        {
            "page": page,
            "q": search,
            "can_create": user_can(request.user, Action.JOB_CREATE),
            "is_admin": user_can(request.user, Action.SYSTEM_ADMIN),
        },
    )


@require_POST
@login_required
@action_required(Action.JOB_CREATE)
def template_use_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    template = template_get_for_user(user=request.user, pk=pk)
    form = UseTemplateForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"{template.name}: {_form_problems(form)}")
        return redirect("jobs:templates")
    data = form.cleaned_data
    values = {k: data[k] for k in ("scale", "quantity") if data.get(k) is not None}
    try:
        job = template_instantiate(
            template=template,
            by=request.user,
            values=values,
            title=data["title"] or template.name,
            priority=data["priority"],
        )
    except (ValidationError, Conflict, PermissionDenied) as exc:
        messages.error(request, f"{template.name}: " + "; ".join(error_messages(exc)))
        return redirect("jobs:templates")
    messages.success(request, f"Job {job.pk} submitted from {template.name}.")
    return redirect("jobs:detail", pk=job.pk)


@require_POST
@login_required
@action_required(Action.JOB_CREATE)
def template_save_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    job = job_get_for_user(user=request.user, pk=pk)
    form = SaveTemplateForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Template not saved: {_form_problems(form)}")
        return redirect("jobs:detail", pk=pk)
    try:
        template = template_from_job(by=request.user, job=job, **form.cleaned_data)
    except (ValidationError, Conflict, PermissionDenied) as exc:
        messages.error(request, "Template not saved: " + "; ".join(error_messages(exc)))
        return redirect("jobs:detail", pk=pk)
    messages.success(request, f"Saved as template {template.name}.")
    return redirect("jobs:templates")


@require_POST
@login_required
@action_required(Action.JOB_CREATE)
def template_delete_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    template = template_get_for_user(user=request.user, pk=pk)
    try:
        template_delete(by=request.user, template=template)
        messages.success(request, f"Deleted template {template.name}.")
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    return redirect("jobs:templates")
