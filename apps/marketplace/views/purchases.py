"""Portal pages for buying: the buy box's POST, the organization's purchases and one
purchase's receipt with its refunds and what it was used for."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from apps.core.exceptions import Conflict, error_messages
from apps.marketplace.models import LedgerTransaction, Listing, Purchase
from apps.marketplace.selectors.listings import listing_get_for_user
from apps.marketplace.selectors.sales import purchase_get_for_user, purchase_list
from apps.marketplace.services import purchase_create
from apps.users.types import AuthenticatedHttpRequest

PAGE_SIZE = 25


@login_required
@require_POST
def purchase_create_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    listing = listing_get_for_user(user=request.user, pk=pk)
    back = redirect("marketplace:listing-detail", pk=listing.pk)
    try:
        purchase, created = purchase_create(
            by=request.user,
            listing=listing,
            client_key=request.POST.get("client_key", ""),
            quantity=request.POST.get("quantity") or 1,
            method=request.POST.get("method") or "fake_ok",
        )
    except (ValidationError, PermissionDenied, Conflict) as exc:
        for line in error_messages(exc):
            messages.error(request, line)
        return back
    if purchase.status == Purchase.Status.FAILED:
        messages.error(request, f"Payment failed: {purchase.failure_reason} Nothing was charged.")
        return back
    if purchase.status == Purchase.Status.PENDING:
        messages.warning(
            request,
            f"{purchase.failure_reason} Your order #{purchase.pk} is kept; try the payment again.",
        )
        return redirect("marketplace:purchase-detail", pk=purchase.pk)
    if created:
        messages.success(
            request, f"Paid {purchase.amount} {purchase.currency} for {listing.title}."
        )
    else:
        messages.info(request, "This order was already placed; nothing was charged again.")
    return redirect("marketplace:purchase-detail", pk=purchase.pk)


@login_required
def purchase_list_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    rows = purchase_list(user=request.user).select_related("version")
    kind = request.GET.get("kind", "")
    status = request.GET.get("status", "")
    if kind in Listing.Kind.values:
        rows = rows.filter(listing__kind=kind)
    else:
        kind = ""
    if status == "usable":
        rows = rows.filter(status__in=[Purchase.Status.PAID, Purchase.Status.PARTIALLY_REFUNDED])
    elif status in Purchase.Status.values:
        rows = rows.filter(status=status)
    else:
        status = ""
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "marketplace/purchases.html",
        {
            "page": page,
            "kind": kind,
            "status": status,
            "kinds": Listing.Kind.choices,
            "statuses": Purchase.Status.choices,
            "filtered": bool(kind or status),
            "query": urlencode({k: v for k, v in (("kind", kind), ("status", status)) if v}),
        },
    )


@login_required
def purchase_detail_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    purchase = purchase_get_for_user(user=request.user, pk=pk)
    latest = purchase.listing.versions.order_by("-number").first()
    refunds = purchase.transactions.filter(kind=LedgerTransaction.Kind.REFUND).prefetch_related(
        "entries__account"
    )
    return render(
        request,
        "marketplace/purchase_detail.html",
        {
            "purchase": purchase,
            "listing": purchase.listing,
            "latest": latest,
            "refunds": [
                {
                    "at": txn.created_at,
                    "memo": txn.memo,
                    "amount": -sum(
                        e.amount for e in txn.entries.all() if e.account.kind == "provider_clearing"
                    ),
                }
                for txn in refunds
            ],
            "uses": purchase.uses.select_related("job", "part"),
        },
    )


urlpatterns: list[URLPattern] = [
    path("market/listings/<int:pk>/buy/", purchase_create_view, name="purchase-create"),
    path("market/purchases/", purchase_list_view, name="purchase-list"),
    path("market/purchases/<int:pk>/", purchase_detail_view, name="purchase-detail"),
]
