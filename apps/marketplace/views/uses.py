"""Portal pages that put a purchase to use (a template's job, a playbook on parts, capacity
booked for a job) and the review forms of a listing page. Members of the purchase's
organization only (404 for others); the services check roles and states again."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from apps.core.exceptions import Conflict, error_messages
from apps.core.forms import form_add_service_error
from apps.marketplace.forms.uses import (
    AttachForm,
    BookForm,
    InstantiateForm,
    ReplyForm,
    ReviewForm,
)
from apps.marketplace.models import Listing, Purchase, Review
from apps.marketplace.selectors.reviews import review_blocked_reason, review_get
from apps.marketplace.selectors.sales import purchase_get_for_user
from apps.marketplace.selectors.uses import (
    capacity_hours_left,
    capacity_hours_used,
    latest_version,
    open_jobs,
    open_parts,
    playbook_by_part,
    purchase_use_list,
    use_get_for_user,
)
from apps.marketplace.services.reviews import review_create, review_reply, review_update
from apps.marketplace.services.uses import (
    capacity_book,
    capacity_release,
    playbook_attach_parts,
    playbook_detach,
    purchase_instantiate,
)
from apps.users.roles import Action, user_can
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.models import FabricationNode

SERVICE_ERRORS = (ValidationError, PermissionDenied, Conflict)
PARTS_PER_PAGE = 50
USE_TEMPLATES = {
    Listing.Kind.TEMPLATE: "marketplace/use_template.html",
    Listing.Kind.PLAYBOOK: "marketplace/use_playbook.html",
    Listing.Kind.CAPACITY: "marketplace/use_capacity.html",
}


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def listing_url(listing: Listing) -> str | None:
    """The listing's page (the listings slice's), when it is wired in."""
    try:
        return reverse("marketplace:listing-detail", args=[listing.pk])
    except NoReverseMatch:
        return None


def _use_context(
    request: AuthenticatedHttpRequest, purchase: Purchase, **forms: Any
) -> dict[str, Any]:
    user = request.user
    listing = purchase.listing
    version = latest_version(listing=listing)
    content = version.content or {}
    own_review = Review.objects.filter(purchase=purchase).first()
    blocked = None
    if purchase.buyer_id == user.pk and own_review is None:
        blocked = review_blocked_reason(purchase=purchase)
    context: dict[str, Any] = {
        "purchase": purchase,
        "listing": listing,
        "version": version,
        "content": content,
        "listing_url": listing_url(listing),
        # members who may buy use it (admins see every purchase but use none)
        "can_use": purchase.is_active
        and user_can(user, Action.MARKET_BUY)
        and purchase.organization.memberships.filter(user=user).exists(),
        "uses": purchase_use_list(purchase=purchase),
        "own_review": own_review,
        # the buyer reviews here too, once a job with it completed
        "review_purchase": purchase
        if purchase.buyer_id == user.pk and own_review is None and blocked is None
        else None,
        "review_blocked": blocked,
        "next": request.get_full_path(),
    }
    org = purchase.organization
    if listing.kind == Listing.Kind.TEMPLATE:
        context["can_create_job"] = context["can_use"] and user_can(user, Action.JOB_CREATE)
        context["form"] = forms.get("form") or InstantiateForm(
            parameters=content.get("parameters") or {}
        )
    elif listing.kind == Listing.Kind.PLAYBOOK:
        job_id = _int(request.GET.get("job"))
        parts = open_parts(organization=org, job_id=job_id)
        page = Paginator(parts, PARTS_PER_PAGE).get_page(request.GET.get("page"))
        following = playbook_by_part(part_ids=[p.pk for p in page])
        context.update(
            page=page,
            rows=[{"part": p, "playbook": following.get(p.pk)} for p in page],
            jobs=open_jobs(organization=org),
            job_id=job_id,
            query=urlencode({"job": job_id}) if job_id else "",
            form=forms.get("form"),
            attach_errors=forms.get("attach_errors") or [],
        )
    else:
        kinds = dict(FabricationNode.Kind.choices)
        context.update(
            node_kind_label=kinds.get(listing.node_kind, listing.node_kind),
            hours_used=capacity_hours_used(purchase=purchase),
            hours_left=capacity_hours_left(purchase=purchase),
            form=forms.get("form") or BookForm(jobs=open_jobs(organization=org)),
        )
    return context


def _render_use(
    request: AuthenticatedHttpRequest, purchase: Purchase, status: int = 200, **forms: Any
) -> HttpResponse:
    template = USE_TEMPLATES[Listing.Kind(purchase.listing.kind)]
    return render(request, template, _use_context(request, purchase, **forms), status=status)


@login_required
def purchase_use_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    purchase = purchase_get_for_user(user=request.user, pk=pk)
    return _render_use(request, purchase)


@require_POST
@login_required
def purchase_instantiate_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    purchase = purchase_get_for_user(user=request.user, pk=pk)
    content = latest_version(listing=purchase.listing).content or {}
    form = InstantiateForm(request.POST, parameters=content.get("parameters") or {})
    if form.is_valid():
        try:
            job = purchase_instantiate(
                by=request.user, purchase=purchase, values=form.values(), **form.job_fields()
            )
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc, strip="parameters.")
        else:
            messages.success(
                request, f"Job {job.pk} created from “{purchase.listing.title}”: {job.title}."
            )
            return redirect("jobs:detail", pk=job.pk)
    return _render_use(request, purchase, status=400, form=form)


@require_POST
@login_required
def purchase_attach_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    purchase = purchase_get_for_user(user=request.user, pk=pk)
    form = AttachForm(request.POST, parts=open_parts(organization=purchase.organization))
    if form.is_valid():
        parts = list(form.cleaned_data["parts"])
        try:
            attached, errors = playbook_attach_parts(
                by=request.user, purchase=purchase, parts=parts
            )
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc, strip="parameters.")
        else:
            if attached:
                names = ", ".join(use.part.name for use in attached if use.part)
                messages.success(request, f"“{purchase.listing.title}” attached to {names}.")
            for messages_of_part in errors.values():
                for line in messages_of_part:
                    messages.error(request, line)
            back = reverse("marketplace:purchase-use", args=[purchase.pk])
            job_id = _int(request.POST.get("job"))
            return redirect(f"{back}?{urlencode({'job': job_id})}" if job_id else back)
    return _render_use(request, purchase, status=400, form=form)


@require_POST
@login_required
def purchase_book_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    purchase = purchase_get_for_user(user=request.user, pk=pk)
    form = BookForm(request.POST, jobs=open_jobs(organization=purchase.organization))
    if form.is_valid():
        try:
            use = capacity_book(by=request.user, purchase=purchase, job=form.cleaned_data["job"])
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc, strip="parameters.")
        else:
            messages.success(
                request,
                f"Job {use.job_id} booked on “{purchase.listing.title}” for {use.hours} h: "
                f"its parts run on {purchase.listing.seller.name}'s nodes.",
            )
            return redirect("marketplace:purchase-use", pk=purchase.pk)
    return _render_use(request, purchase, status=400, form=form)


@require_POST
@login_required
def use_remove_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Detach a playbook from its part, or release a capacity booking."""
    use = use_get_for_user(user=request.user, pk=pk)
    purchase_id = use.purchase_id
    try:
        if use.part_id is not None:
            name = use.part.name if use.part else ""
            playbook_detach(by=request.user, use=use)
            messages.success(request, f"Part {name} no longer follows the playbook.")
        else:
            job_id = use.job_id
            capacity_release(by=request.user, use=use)
            messages.success(request, f"Booking of job {job_id} released; its hours are back.")
    except SERVICE_ERRORS as exc:
        for line in error_messages(exc):
            messages.error(request, line)
    return redirect("marketplace:purchase-use", pk=purchase_id)


# --- Reviews -------------------------------------------------------------------------------------


def _back(request: AuthenticatedHttpRequest, listing: Listing, purchase_id: int | None) -> str:
    """Where a review form returns to: the page it was on, else the listing's page."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    fallback = listing_url(listing)
    if fallback:
        return f"{fallback}#reviews"
    if purchase_id is not None:
        return reverse("marketplace:purchase-use", args=[purchase_id])
    return reverse("marketplace:purchase-list")


def _form_errors(request: AuthenticatedHttpRequest, form: Any, prefix: str) -> None:
    for field, errors in form.errors.items():
        label = "" if field == "__all__" else f"{field}: "
        messages.error(request, f"{prefix}{label}{' '.join(errors)}")


@require_POST
@login_required
def review_create_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    purchase = purchase_get_for_user(user=request.user, pk=pk)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form, "Review not saved: ")
    else:
        try:
            review_create(by=request.user, purchase=purchase, **form.cleaned_data)
        except SERVICE_ERRORS as exc:
            messages.error(request, "Review not saved: " + " ".join(error_messages(exc)))
        else:
            messages.success(request, f"Thank you: your review of “{purchase.listing.title}”.")
    return redirect(_back(request, purchase.listing, purchase.pk))


@require_POST
@login_required
def review_edit_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    review = review_get(pk=pk)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form, "Review not changed: ")
    else:
        try:
            review_update(by=request.user, review=review, **form.cleaned_data)
        except SERVICE_ERRORS as exc:
            messages.error(request, "Review not changed: " + " ".join(error_messages(exc)))
        else:
            messages.success(request, "Your review is updated.")
    return redirect(_back(request, review.listing, None))


@require_POST
@login_required
def review_reply_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    review = review_get(pk=pk)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form, "Reply not saved: ")
    else:
        try:
            review_reply(by=request.user, review=review, text=form.cleaned_data["text"])
        except SERVICE_ERRORS as exc:
            messages.error(request, "Reply not saved: " + " ".join(error_messages(exc)))
        else:
            messages.success(request, "Your reply is published under the review.")
    return redirect(_back(request, review.listing, None))


urlpatterns: list[URLPattern] = [
    path("market/purchases/<int:pk>/use/", purchase_use_view, name="purchase-use"),
    path(
        "market/purchases/<int:pk>/instantiate/",
        purchase_instantiate_view,
        name="purchase-instantiate",
    ),
    path("market/purchases/<int:pk>/attach/", purchase_attach_view, name="purchase-attach"),
    path("market/purchases/<int:pk>/book/", purchase_book_view, name="purchase-book"),
    path("market/uses/<int:pk>/remove/", use_remove_view, name="use-remove"),
    path("market/purchases/<int:pk>/review/", review_create_view, name="review-create"),
    path("market/reviews/<int:pk>/edit/", review_edit_view, name="review-edit"),
    path("market/reviews/<int:pk>/reply/", review_reply_view, name="review-reply"),
]
