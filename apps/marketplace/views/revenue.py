"""Portal pages of the money a seller makes: the revenue dashboard (and its CSV), the sales list
with refunds, and the admins' ledger with payouts to sellers."""

from __future__ import annotations

import csv
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from apps.core.exceptions import Conflict, error_messages
from apps.marketplace.forms.revenue import PayoutForm, RefundForm, RevenueFilterForm, RevenueQuery
from apps.marketplace.models import Purchase
from apps.marketplace.selectors.revenue_export import (
    PERIOD_CHOICES,
    ledger_transaction_list,
    payouts_due_list,
    revenue_csv_rows,
    revenue_currencies,
    revenue_period_starts,
    revenue_rows_in,
    revenue_seller_get_for_user,
    seller_listings,
)
from apps.marketplace.selectors.sales import (
    Revenue,
    RevenueRow,
    ledger_balances,
    ledger_check,
    sale_get_for_user,
    sale_list,
    seller_orgs,
    seller_revenue,
)
from apps.marketplace.services import can_refund, payout_record, purchase_refund
from apps.users.access import action_required
from apps.users.roles import Action, Scope, scope_for
from apps.users.types import AuthenticatedHttpRequest

SERVICE_ERRORS = (ValidationError, PermissionDenied, Conflict)
SALES_PAGE_SIZE = 50
LEDGER_TRANSACTIONS = 100
SALE_STATUSES = [(v, label) for v, label in Purchase.Status.choices if v != Purchase.Status.PENDING]

sell_required = action_required(Action.MARKET_SELL)


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _require_admin(request: AuthenticatedHttpRequest) -> None:
    if scope_for(request.user, Action.MARKET_SELL) != Scope.ALL:
        raise PermissionDenied("Only administrators see the whole ledger and record payouts.")


def _back(request: AuthenticatedHttpRequest, default: str) -> str:
    """Where a form posted from a filtered list returns to: its `next`, if it is ours."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse(default)


# --- Revenue ------------------------------------------------------------------------------------


def _revenue_query(request: AuthenticatedHttpRequest) -> tuple[RevenueFilterForm, RevenueQuery]:
    form = RevenueFilterForm(request.GET)
    return form, form.query()


def _chart(revenue: Revenue, currency: str) -> dict[str, Any]:
    """Net and commission per period as stacked bars and refunds as a line, every period of the
    range included (for templates/marketplace/_r_chart.html, drawn by static/js/energy.js)."""
    rows = {row.key: row for row in revenue_rows_in(revenue.by_period, currency)}
    starts = revenue_period_starts(start=revenue.start, end=revenue.end, period=revenue.period)
    blank = RevenueRow(label="", currency=currency)
    label = {"day": "%Y-%m-%d", "week": "%Y-%m-%d", "month": "%Y-%m"}[revenue.period]
    return {
        "id": "revenue-chart",
        "title": f"Net and commission per {revenue.period} ({currency}), refunds as a line",
        "type": "bar",
        "stacked": True,
        "labels": [start.strftime(label) for start in starts],
        "axes": {"y": f"Amount ({currency})"},
        "series": [
            {"label": "Net to you", "data": [rows.get(s, blank).net for s in starts]},
            {"label": "Commission", "data": [rows.get(s, blank).commission for s in starts]},
            {
                "label": "Refunds",
                "type": "line",
                "colour": "#b7950b",
                "data": [rows.get(s, blank).refunds for s in starts],
            },
        ],
    }


def _revenue_context(request: AuthenticatedHttpRequest) -> dict[str, Any]:
    form, query = _revenue_query(request)
    for line in form.error_lines():
        messages.error(request, f"{line} Showing the default instead.")
    seller = revenue_seller_get_for_user(user=request.user, pk=query.seller_id)
    context: dict[str, Any] = {
        "query": query,
        "sellers": seller_orgs(user=request.user).order_by("name", "pk"),
        "seller": seller,
        "periods": PERIOD_CHOICES,
        "is_admin": scope_for(request.user, Action.MARKET_SELL) == Scope.ALL,
    }
    if seller is None:
        return context
    revenue = seller_revenue(
        organization=seller, start=query.start, end=query.end, period=query.period
    )
    currencies = revenue_currencies(revenue)
    currency = (
        query.currency
        if query.currency in currencies
        else currencies[0]
        if currencies
        else settings.MARKETPLACE_DEFAULT_CURRENCY
    )
    by_period = revenue_rows_in(revenue.by_period, currency)
    shown = RevenueQuery(
        seller_id=seller.pk,
        start=query.start,
        end=query.end,
        period=query.period,
        currency=currency,
    )
    return {
        **context,
        "query": shown,
        "revenue": revenue,
        "currency": currency,
        "tabs": [(c, shown.params(currency=c)) for c in currencies] if len(currencies) > 1 else [],
        "totals": revenue.totals.get(currency) or RevenueRow(label="Total", currency=currency),
        "paid_out": revenue.payouts.get(currency, Decimal("0.00")),
        "due": revenue.due.get(currency, Decimal("0.00")),
        "by_period": by_period,
        "by_listing": revenue_rows_in(revenue.by_listing, currency),
        "chart": _chart(revenue, currency) if by_period else None,
        "csv_query": shown.params(currency=""),
    }


@login_required
@sell_required
def revenue_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "marketplace/revenue.html", _revenue_context(request))


@login_required
@sell_required
def revenue_csv_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form, query = _revenue_query(request)
    if form.errors:  # the page says what is wrong
        return redirect(f"{reverse('marketplace:revenue')}?{request.GET.urlencode()}")
    seller = revenue_seller_get_for_user(user=request.user, pk=query.seller_id)
    if seller is None:
        raise PermissionDenied("You belong to no organization that sells.")
    revenue = seller_revenue(
        organization=seller, start=query.start, end=query.end, period=query.period
    )
    name = f"revenue-{seller.slug}-{query.start.isoformat()}-{query.end.isoformat()}.csv"
    response = HttpResponse(
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
    csv.writer(response).writerows(revenue_csv_rows(revenue=revenue))
    return response


# --- Sales --------------------------------------------------------------------------------------


@login_required
@sell_required
def sales_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    listing_id = _int(request.GET.get("listing"))
    status = request.GET.get("status") or ""
    if status not in Purchase.Status.values:
        status = ""
    rows = sale_list(user=user).select_related("listing__seller").order_by("-created_at", "-id")
    if listing_id:
        rows = rows.filter(listing_id=listing_id)
    if status:
        rows = rows.filter(status=status)
    page = Paginator(rows, SALES_PAGE_SIZE).get_page(request.GET.get("page"))
    refunds_by_seller: dict[int, bool] = {}
    sales = []
    for sale in page:
        if sale.listing.seller_id not in refunds_by_seller:
            refunds_by_seller[sale.listing.seller_id] = can_refund(user=user, purchase=sale)
        sales.append(
            {
                "sale": sale,
                "can_refund": sale.is_active and refunds_by_seller[sale.listing.seller_id],
            }
        )
    return render(
        request,
        "marketplace/sales.html",
        {
            "page": page,
            "sales": sales,
            "listings": seller_listings(user=user),
            "listing_id": listing_id,
            "statuses": SALE_STATUSES,
            "status": status,
            "filtered": bool(listing_id or status),
            "query": urlencode(
                {k: v for k, v in (("listing", listing_id or ""), ("status", status)) if v}
            ),
            "is_admin": scope_for(user, Action.MARKET_SELL) == Scope.ALL,
        },
    )


@require_POST
@login_required
@sell_required
def sale_refund_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    sale = sale_get_for_user(user=request.user, pk=pk)
    back = _back(request, "marketplace:sales")
    form = RefundForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Sale #{pk} not refunded: " + "; ".join(_form_errors(form)))
        return redirect(back)
    before = sale.refunded_amount
    try:
        sale = purchase_refund(by=request.user, purchase=sale, **form.cleaned_data)
    except SERVICE_ERRORS as exc:
        messages.error(request, f"Sale #{pk} not refunded: " + "; ".join(error_messages(exc)))
    else:
        messages.success(
            request,
            f"Refunded {sale.refunded_amount - before} {sale.currency} of sale #{sale.pk} "
            f"({sale.listing.title}) to {sale.organization.name}.",
        )
    return redirect(back)


def _form_errors(form: Any) -> list[str]:
    return [
        f"{field}: {' '.join(errors)}" if field != "__all__" else " ".join(errors)
        for field, errors in form.errors.items()
    ]


# --- Ledger (admins) ----------------------------------------------------------------------------


@login_required
@sell_required
def ledger_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    _require_admin(request)
    check = ledger_check()
    return render(
        request,
        "marketplace/ledger.html",
        {
            "balances": ledger_balances(),
            "check": check,
            "trial": sorted(check["per_currency"].items()),
            "transactions": ledger_transaction_list(limit=LEDGER_TRANSACTIONS),
            "transaction_limit": LEDGER_TRANSACTIONS,
            "dues": payouts_due_list(),
        },
    )


@require_POST
@login_required
@sell_required
def payout_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    _require_admin(request)
    form = PayoutForm(request.POST)
    if not form.is_valid():
        messages.error(request, "No payout recorded: " + "; ".join(_form_errors(form)))
        return redirect("marketplace:ledger")
    organization = form.cleaned_data["organization"]
    try:
        posted = payout_record(by=request.user, **form.cleaned_data)
    except SERVICE_ERRORS as exc:
        messages.error(request, "No payout recorded: " + "; ".join(error_messages(exc)))
    else:
        paid = sum((e.amount for e in posted.entries.all() if e.amount > 0), Decimal("0.00"))
        messages.success(
            request,
            f"Recorded a payout of {paid} {posted.currency} to {organization.name} "
            f"(transaction #{posted.pk}).",
        )
    return redirect("marketplace:ledger")


urlpatterns: list[URLPattern] = [
    path("market/revenue/", revenue_view, name="revenue"),
    path("market/revenue/csv/", revenue_csv_view, name="revenue-csv"),
    path("market/sales/", sales_view, name="sales"),
    path("market/sales/<int:pk>/refund/", sale_refund_view, name="sale-refund"),
    path("market/ledger/", ledger_view, name="ledger"),
    path("market/ledger/payouts/", payout_view, name="payout"),
]
