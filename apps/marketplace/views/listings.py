"""Portal pages of listings: browse and search, a listing's page (content, versions, the
seller's service figures, then the buy box and reviews), and the sellers' pages to list,
edit, version, publish, retire and illustrate what they sell."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import FileResponse, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from apps.core.exceptions import Conflict, error_messages
from apps.core.forms import form_add_service_error
from apps.jobs.models import JobTemplate
from apps.jobs.services import MAX_PARTS
from apps.marketplace.forms.listing_content import (
    STEP_FIELDS,
    StepForm,
    StepFormSet,
    TemplateParametersForm,
    TemplatePartForm,
    TemplatePartFormSet,
    filled_rows,
    playbook_content,
    rows_raw,
    steps_raw,
    template_content,
)
from apps.marketplace.forms.listings import (
    BrowseForm,
    ImageForm,
    ListingCreateForm,
    ListingEditForm,
    RetireForm,
    VersionForm,
    catalogue_codes,
    posted_initial,
)
from apps.marketplace.http import image_file_response
from apps.marketplace.models import Listing, ListingFacet
from apps.marketplace.selectors.listings import (
    listing_browse,
    listing_can_manage,
    listing_facet_values,
    listing_get_for_user,
    listing_image_get_for_user,
    listing_manage_get,
    listing_manageable,
    listing_stats,
    listing_visible,
    seller_sla,
    seller_visible,
)
from apps.marketplace.selectors.reviews import review_context, seller_reviews
from apps.marketplace.selectors.sales import buy_context, owned_listing_ids
from apps.marketplace.services.listing_content import capacity_kinds
from apps.marketplace.services.listing_images import (
    MAX_IMAGES,
    listing_image_add,
    listing_image_delete,
    listing_image_move,
)
from apps.marketplace.services.listings import (
    listing_create,
    listing_new_version,
    listing_publish,
    listing_retire,
    listing_update,
)
from apps.users.access import action_required
from apps.users.models import Organization
from apps.users.roles import Action, Scope, scope_for
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors import catalog
from apps.vendors.models import FabricationNode

SERVICE_ERRORS = (ValidationError, Conflict)
BROWSE_PAGE_SIZE = 24
NO_PARTS = "Choose a job template, or describe at least one part (name, material, process, sizes)."
SELL_PAGE_SIZE = 50

sell_required = action_required(Action.MARKET_SELL)


# --- Browse and the listing page --------------------------------------------------------------


@login_required
def browse_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = BrowseForm(
        request.GET or None,
        materials=listing_facet_values(facet=ListingFacet.Facet.MATERIAL),
        processes=listing_facet_values(facet=ListingFacet.Facet.PROCESS),
    )
    filters = form.filters() if form.is_bound else {"sort": "newest"}
    rows = listing_browse(user=request.user, **filters)
    page = Paginator(rows, BROWSE_PAGE_SIZE).get_page(request.GET.get("page"))
    kept = [(k, str(v)) for k, v in request.GET.items() if k != "page" and v]
    return render(
        request,
        "marketplace/browse.html",
        {
            "form": form,
            "page": page,
            "query": urlencode(kept),
            "filtered": any(k != "sort" for k, _ in kept),
            # a price bound without a currency compares in the default one: say so
            "price_currency": (
                filters.get("currency") or settings.MARKETPLACE_DEFAULT_CURRENCY
                if "price_min" in filters or "price_max" in filters
                else ""
            ),
            "owned": owned_listing_ids(user=request.user),
            "can_sell": scope_for(request.user, Action.MARKET_SELL) is not None,
        },
    )


@login_required
def seller_detail_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """A seller's public page: its service figures, what it has for sale and its newest
    reviews. 404 for an organization with nothing published (unless it is the caller's)."""
    seller = seller_visible(user=request.user, pk=pk)
    rows = listing_browse(user=request.user, seller=seller.pk, sort="rating")
    page = Paginator(rows, BROWSE_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "marketplace/seller.html",
        {
            "seller": seller,
            "sla": seller_sla(organization=seller),
            "page": page,
            "query": "",
            "owned": owned_listing_ids(user=request.user),
            "reviews": seller_reviews(organization=seller),
            "visible_ids": set(
                listing_visible(user=request.user)
                .filter(seller=seller)
                .values_list("pk", flat=True)
            ),
        },
    )


def _facets(listing: Listing) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {"tag": [], "material": [], "process": []}
    for facet in listing.facets.all():
        grouped[facet.facet].append(facet.value)
    return grouped


@login_required
def listing_detail_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    listing = listing_get_for_user(user=request.user, pk=pk)
    versions = list(listing.versions.select_related("created_by").order_by("-number"))
    can_manage = listing_can_manage(user=request.user, listing=listing)
    images = list(listing.images.all())
    context: dict[str, Any] = {
        "listing": listing,
        "versions": versions,
        "latest": versions[0] if versions else None,
        "images": images,
        "facets": _facets(listing),
        "sla": seller_sla(organization=listing.seller),
        "stats": listing_stats(listing=listing),
        "can_manage": can_manage,
        "editable": can_manage and listing.status != Listing.Status.RETIRED,
        "retire_form": RetireForm(),
        "image_form": ImageForm() if len(images) < MAX_IMAGES else None,
        "max_images": MAX_IMAGES,
        "node_kind_label": dict(FabricationNode.Kind.choices).get(listing.node_kind, ""),
    }
    context.update(buy_context(user=request.user, listing=listing))
    context.update(
        review_context(user=request.user, listing=listing, page=request.GET.get("reviews"))
    )
    return render(request, "marketplace/listing_detail.html", context)


# --- Selling ----------------------------------------------------------------------------------


@login_required
@sell_required
def seller_listings_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    status = request.GET.get("status") or ""
    if status not in Listing.Status.values:
        status = ""
    rows = listing_manageable(user=request.user, status=status)
    page = Paginator(rows, SELL_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "marketplace/seller_listings.html",
        {
            "page": page,
            "status": status,
            "statuses": Listing.Status.choices,
            "query": urlencode({"status": status} if status else {}),
            "kinds": Listing.Kind.choices,
        },
    )


def _seller_organizations(request: AuthenticatedHttpRequest) -> QuerySet[Organization]:
    if scope_for(request.user, Action.MARKET_SELL) == Scope.ALL:
        return Organization.objects.order_by("name")
    return Organization.objects.filter(memberships__user=request.user).order_by("name")


def _chosen_org(
    request: AuthenticatedHttpRequest, organizations: QuerySet[Organization]
) -> Organization | None:
    raw = request.POST.get("organization") or request.GET.get("organization")
    if raw and raw.isdigit():
        chosen = organizations.filter(pk=int(raw)).first()
        if chosen is not None:
            return chosen
    mine = Organization.objects.filter(memberships__user=request.user).order_by("memberships__id")
    return mine.first() or organizations.first()


class _Rows:
    """The row editor next to a listing's form: a playbook's steps, or the parts of a template
    typed for its listing (with the parameters' limits); nothing for the other kinds.
    `added`: the POST of an "Add a step/part" click, shown again unchecked with a blank row."""

    def __init__(
        self, kind: str, *, data: Any = None, initial: Any = None, added: Any = None
    ) -> None:
        self.steps: Any = None
        self.parts: Any = None
        self.params: TemplateParametersForm | None = None
        if kind == Listing.Kind.PLAYBOOK:
            if added is not None:
                initial = steps_raw(added)
            self.steps = StepFormSet(data, prefix="steps", initial=initial)
        elif kind == Listing.Kind.TEMPLATE:
            content = initial or {}
            if added is not None:
                parts = rows_raw(added, "parts", TemplatePartForm.ALL, MAX_PARTS)
                limits = added.dict()
            else:
                parts = [TemplatePartForm.initial_for(p) for p in content.get("parts", [])]
                limits = TemplateParametersForm.initial_for(content) if content else None
            if data is not None and "parts-TOTAL_FORMS" not in data:
                data = None  # a post choosing a job template without the parts editor
            self.parts = TemplatePartFormSet(data, prefix="parts", initial=parts or None)
            self.params = TemplateParametersForm(data, initial=limits)

    @classmethod
    def posted(cls, kind: str, request: AuthenticatedHttpRequest) -> _Rows:
        if "add_step" in request.POST or "add_part" in request.POST:
            return cls(kind, added=request.POST)
        return cls(kind, data=request.POST)

    def context(self) -> dict[str, Any]:
        return {"steps": self.steps, "parts": self.parts, "params": self.params}

    def is_valid(self) -> bool:
        forms = [f for f in (self.steps, self.parts, self.params) if f is not None and f.is_bound]
        checked = [f.is_valid() for f in forms]  # every form, so each shows its errors
        return all(checked)

    def content(
        self,
        materials: list[str] | None = None,
        processes: list[str] | None = None,
        previous: Any = None,
    ) -> tuple[Any, list[int] | None]:
        """The content the rows make (None: no part typed), and which rows it came from.
        `previous`: a template's parameters so far (their smallest values and defaults stay)."""
        if self.steps is not None:
            kept = filled_rows(self.steps, STEP_FIELDS)
            return playbook_content(self.steps, materials or [], processes or []), kept
        if self.parts is not None and self.params is not None and self.parts.is_bound:
            content, kept = template_content(self.parts, self.params, previous)
            return (content if kept else None), kept
        return None, None

    @property
    def formset(self) -> Any:
        return self.steps if self.steps is not None else self.parts


def _create_page(
    request: AuthenticatedHttpRequest, kind: str, form: Any, rows: _Rows, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "marketplace/listing_form.html",
        {
            "kind": kind,
            "kind_label": Listing.Kind(kind).label,
            "form": form,
            "materials_by_process": catalog.materials_by_process(),
            **rows.context(),
        },
        status=status,
    )


@login_required
@sell_required
def listing_create_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    kind = request.POST.get("kind") or request.GET.get("kind") or ""
    if kind not in Listing.Kind.values:
        return render(
            request, "marketplace/listing_form.html", {"kind": "", "kinds": Listing.Kind.choices}
        )
    organizations = _seller_organizations(request)
    org = _chosen_org(request, organizations)
    options: dict[str, Any] = {
        "kind": kind,
        "organizations": organizations,
        "templates": JobTemplate.objects.filter(organization__in=organizations).select_related(
            "organization"
        ),
        "node_kinds": capacity_kinds(organization=org) if org else [],
    }
    initial = {"organization": org.pk if org else None}
    if request.method != "POST":
        form = ListingCreateForm(initial=initial, **options)
        return _create_page(request, kind, form, _Rows(kind))
    rows = _Rows.posted(kind, request)
    if "add_step" in request.POST or "add_part" in request.POST:
        form = ListingCreateForm(initial=posted_initial(request.POST), **options)
        return _create_page(request, kind, form, rows)
    form = ListingCreateForm(request.POST, **options)
    kept: list[int] | None = None
    if form.is_valid() and rows.is_valid():
        values = form.listing_values()
        template = values.get("template")
        if values.get("organization") is None:
            values["organization"] = template.organization if template else org
        content, kept = rows.content(values.get("materials"), values.get("processes"))
        if content is not None:
            values["content"] = content
        if kind == Listing.Kind.TEMPLATE and content is None and not template:
            form.add_error("template" if "template" in form.fields else None, NO_PARTS)
            return _create_page(request, kind, form, rows, status=400)
        try:
            listing = listing_create(by=request.user, kind=kind, **values)
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc, rows.formset, kept)
        else:
            messages.success(
                request, f"Draft “{listing.title}” saved. Check it, then publish it here."
            )
            return redirect("marketplace:listing-detail", pk=listing.pk)
    return _create_page(request, kind, form, rows, status=400)


@login_required
def listing_edit_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    listing = listing_manage_get(user=request.user, pk=pk)
    if listing.status == Listing.Status.RETIRED:
        messages.error(request, "This listing is retired: it can no longer be changed.")
        return redirect("marketplace:listing-detail", pk=pk)
    if request.method == "POST":
        form = ListingEditForm(request.POST, kind=listing.kind)
        if form.is_valid():
            try:
                listing_update(by=request.user, listing=listing, **form.listing_values())
            except SERVICE_ERRORS as exc:
                form_add_service_error(form, exc)
            else:
                messages.success(request, "Listing saved.")
                return redirect("marketplace:listing-detail", pk=pk)
        status = 400
    else:
        form = ListingEditForm(initial=ListingEditForm.initial_for(listing), kind=listing.kind)
        status = 200
    return render(
        request,
        "marketplace/listing_form.html",
        {
            "kind": listing.kind,
            "listing": listing,
            "form": form,
            "editing": True,
            "materials_by_process": catalog.materials_by_process(),
        },
        status=status,
    )


def _version_page(
    request: AuthenticatedHttpRequest,
    listing: Listing,
    form: VersionForm,
    rows: _Rows,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "marketplace/version_form.html",
        {
            "listing": listing,
            "form": form,
            **rows.context(),
            "latest": listing.versions.order_by("-number").first(),
            "materials_by_process": catalog.materials_by_process(),
        },
        status=status,
    )


@login_required
def listing_version_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    listing = listing_manage_get(user=request.user, pk=pk)
    if listing.status == Listing.Status.RETIRED:
        messages.error(request, "This listing is retired: it can no longer be changed.")
        return redirect("marketplace:listing-detail", pk=pk)
    latest = listing.versions.order_by("-number").first()
    content = latest.content if latest else {}
    # a template listing made from a job template takes it again; one typed for its listing
    # (no job template) is edited here, part by part
    row_kind = listing.kind
    if listing.kind == Listing.Kind.TEMPLATE and listing.template_id is not None:
        row_kind = ""
    if request.method != "POST":
        initial = {
            "min_hours": listing.min_hours,
            "max_hours": listing.max_hours,
            "materials": catalogue_codes(content.get("materials"), kind="material"),
            "processes": catalogue_codes(content.get("processes"), kind="process"),
        }
        rows_initial: Any = content
        if row_kind == Listing.Kind.PLAYBOOK:
            rows_initial = [StepForm.initial_for(s) for s in content.get("steps", [])]
        rows = _Rows(row_kind, initial=rows_initial)
        return _version_page(
            request, listing, VersionForm(initial=initial, kind=listing.kind), rows
        )
    rows = _Rows.posted(row_kind, request)
    if "add_step" in request.POST or "add_part" in request.POST:
        form = VersionForm(initial=posted_initial(request.POST), kind=listing.kind)
        return _version_page(request, listing, form, rows)
    form = VersionForm(request.POST, kind=listing.kind)
    kept: list[int] | None = None
    if form.is_valid() and rows.is_valid():
        data = form.cleaned_data
        new_content, kept = rows.content(
            data.get("materials"), data.get("processes"), content.get("parameters")
        )
        if row_kind == Listing.Kind.TEMPLATE and new_content is None:
            new_content = {"parts": []}  # every row blanked: the service says a part is needed
        if listing.kind == Listing.Kind.CAPACITY:
            new_content = {"min_hours": data["min_hours"], "max_hours": data["max_hours"]}
        try:
            version = listing_new_version(
                by=request.user, listing=listing, content=new_content, changelog=data["changelog"]
            )
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc, rows.formset, kept)
        else:
            messages.success(
                request,
                f"Version {version.number} saved."
                if listing.status == Listing.Status.PUBLISHED
                else "Draft content saved.",
            )
            return redirect("marketplace:listing-detail", pk=pk)
    return _version_page(request, listing, form, rows, status=400)


@require_POST
@login_required
def listing_publish_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    listing = listing_get_for_user(user=request.user, pk=pk)
    try:
        listing_publish(by=request.user, listing=listing)
    except SERVICE_ERRORS as exc:
        messages.error(request, "Not published: " + "; ".join(error_messages(exc)))
    else:
        messages.success(request, f"“{listing.title}” is published: everyone can find it now.")
    return redirect("marketplace:listing-detail", pk=pk)


@require_POST
@login_required
def listing_retire_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    listing = listing_get_for_user(user=request.user, pk=pk)
    form = RetireForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        listing_retire(by=request.user, listing=listing, reason=reason)
    except SERVICE_ERRORS as exc:
        messages.error(request, "Not retired: " + "; ".join(error_messages(exc)))
    else:
        messages.success(
            request, f"“{listing.title}” is retired: no new sales; buyers keep what they bought."
        )
    return redirect("marketplace:listing-detail", pk=pk)


@require_POST
@login_required
def listing_image_add_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    listing = listing_get_for_user(user=request.user, pk=pk)
    form = ImageForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            listing_image_add(
                by=request.user,
                listing=listing,
                file=form.cleaned_data["image"],
                alt=form.cleaned_data["alt"],
            )
        except SERVICE_ERRORS as exc:
            messages.error(request, "Image not added: " + "; ".join(error_messages(exc)))
        else:
            messages.success(request, "Image added.")
    else:
        messages.error(request, "Image not added: choose a PNG, JPEG or WebP file.")
    return redirect("marketplace:listing-detail", pk=pk)


@require_POST
@login_required
def listing_image_delete_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    image = listing_image_get_for_user(user=request.user, pk=pk)
    listing_id = image.listing_id
    try:
        listing_image_delete(by=request.user, image=image)
    except SERVICE_ERRORS as exc:
        messages.error(request, "Image not removed: " + "; ".join(error_messages(exc)))
    else:
        messages.success(request, "Image removed.")
    return redirect("marketplace:listing-detail", pk=listing_id)


@login_required
def listing_image_file_view(request: AuthenticatedHttpRequest, pk: int) -> FileResponse:
    return image_file_response(listing_image_get_for_user(user=request.user, pk=pk))


@require_POST
@login_required
def listing_image_move_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    image = listing_image_get_for_user(user=request.user, pk=pk)
    try:
        listing_image_move(by=request.user, image=image, position=request.POST.get("position"))
    except SERVICE_ERRORS as exc:
        messages.error(request, "Image not moved: " + "; ".join(error_messages(exc)))
    else:
        messages.success(request, "Cover image set." if image.position == 1 else "Image moved.")
    return redirect("marketplace:listing-detail", pk=image.listing_id)


urlpatterns: list[URLPattern] = [
    path("market/", browse_view, name="browse"),
    path("market/listings/<int:pk>/", listing_detail_view, name="listing-detail"),
    path("market/sellers/<int:pk>/", seller_detail_view, name="seller-detail"),
    path("market/listings/<int:pk>/edit/", listing_edit_view, name="listing-edit"),
    path("market/listings/<int:pk>/version/", listing_version_view, name="listing-version"),
    path("market/listings/<int:pk>/publish/", listing_publish_view, name="listing-publish"),
    path("market/listings/<int:pk>/retire/", listing_retire_view, name="listing-retire"),
    path("market/listings/<int:pk>/images/", listing_image_add_view, name="listing-image-add"),
    path("market/images/<int:pk>/delete/", listing_image_delete_view, name="listing-image-delete"),
    path("market/images/<int:pk>/move/", listing_image_move_view, name="listing-image-move"),
    path("market/images/<int:pk>/file/", listing_image_file_view, name="listing-image-file"),
    path("market/sell/", seller_listings_view, name="seller-listings"),
    path("market/sell/new/", listing_create_view, name="listing-create"),
]
