"""The seller's money through the API (under /api/v1/market/): revenue per period and listing,
the sales list and refunds, and for admins the ledger and payouts. A role without MARKET_SELL
gets 403; a sale or seller outside the caller's scope 404."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.marketplace.api.purchases import PURCHASE_MONEY_FIELDS
from apps.marketplace.models import LedgerTransaction, Purchase
from apps.marketplace.selectors.revenue_export import (
    DEFAULT_DAYS,
    PERIOD_CHOICES,
    payouts_due_list,
    revenue_currencies,
    revenue_default_range,
    revenue_range_check,
    revenue_seller_get_for_user,
)
from apps.marketplace.selectors.sales import (
    ledger_balances,
    ledger_check,
    sale_get_for_user,
    sale_list,
    seller_revenue,
)
from apps.marketplace.services import can_refund, payout_record, purchase_refund
from apps.users.models import Organization
from apps.users.roles import Action, Scope, scope_for
from apps.users.types import AuthenticatedRequest


def money(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=14, decimal_places=2, **kwargs)


def _require_seller(user: Any) -> None:
    if scope_for(user, Action.MARKET_SELL) is None:
        raise PermissionDenied("Your role does not sell on the marketplace.")


def _require_admin(user: Any) -> None:
    if scope_for(user, Action.MARKET_SELL) != Scope.ALL:
        raise PermissionDenied("Only administrators see the whole ledger and record payouts.")


# --- Revenue ------------------------------------------------------------------------------------


class RevenueQuerySerializer(serializers.Serializer[Any]):
    seller = serializers.IntegerField(
        required=False, min_value=1, help_text="Default: the first of your organizations by name."
    )
    start = serializers.DateField(required=False, help_text="Default: 89 days before the end.")
    end = serializers.DateField(required=False, help_text="Default: today.")
    period = serializers.ChoiceField(choices=PERIOD_CHOICES, required=False, default="week")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        end: date = attrs.get("end") or revenue_default_range()[1]
        start: date = attrs.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        try:
            revenue_range_check(start=start, end=end)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return {**attrs, "start": start, "end": end}


class RevenueFiguresSerializer(serializers.Serializer[Any]):
    currency = serializers.CharField()
    sales = serializers.IntegerField()
    gross = money(help_text="What buyers paid.")
    refunds = money(help_text="What went back to buyers (positive).")
    commission = money(help_text="The platform's share after refunds.")
    net = money(help_text="The seller's share after refunds.")


class RevenuePeriodSerializer(RevenueFiguresSerializer):
    period = serializers.DateField(source="key", help_text="The period's first day.")


class RevenueListingSerializer(RevenueFiguresSerializer):
    listing = serializers.IntegerField(source="key")
    title = serializers.CharField(source="label")


class CurrencyAmountSerializer(serializers.Serializer[Any]):
    currency = serializers.CharField()
    amount = money()


class RevenueSellerSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()


class RevenueSerializer(serializers.Serializer[Any]):
    seller = RevenueSellerSerializer(source="organization")
    start = serializers.DateField()
    end = serializers.DateField()
    period = serializers.CharField()
    currencies = serializers.ListField(child=serializers.CharField())
    totals = RevenueFiguresSerializer(many=True, help_text="Per currency.")
    by_period = RevenuePeriodSerializer(many=True)
    by_listing = RevenueListingSerializer(many=True)
    payouts = CurrencyAmountSerializer(many=True, help_text="Paid out between the dates.")
    due = CurrencyAmountSerializer(many=True, help_text="Payouts due now.")


class RevenueApi(APIView):
    """Sales, refunds, commission and net of one seller between two dates (inclusive, at most
    three years apart), per period and per listing and currency, with payouts made in the range
    and due now. Amounts are decimal strings."""

    @extend_schema(parameters=[RevenueQuerySerializer], responses=RevenueSerializer)
    def get(self, request: AuthenticatedRequest) -> Response:
        _require_seller(request.user)
        query = RevenueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        values = query.validated_data
        seller = revenue_seller_get_for_user(user=request.user, pk=values.get("seller"))
        if seller is None:
            raise PermissionDenied("You belong to no organization that sells.")
        revenue = seller_revenue(
            organization=seller, start=values["start"], end=values["end"], period=values["period"]
        )
        currencies = revenue_currencies(revenue)
        body = {
            "organization": seller,
            "start": revenue.start,
            "end": revenue.end,
            "period": revenue.period,
            "currencies": currencies,
            "totals": [revenue.totals[c] for c in currencies if c in revenue.totals],
            "by_period": revenue.by_period,
            "by_listing": revenue.by_listing,
            "payouts": [
                {"currency": c, "amount": a} for c, a in sorted(revenue.payouts.items()) if a
            ],
            "due": [{"currency": c, "amount": a} for c, a in sorted(revenue.due.items()) if a],
        }
        return Response(RevenueSerializer(body).data)


# --- Sales --------------------------------------------------------------------------------------


class SaleListingSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    title = serializers.CharField()
    kind = serializers.CharField()
    seller = serializers.IntegerField(source="seller_id")


class SaleBuyerSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()


class SaleSerializer(serializers.ModelSerializer[Purchase]):
    listing = SaleListingSerializer()
    buyer_organization = SaleBuyerSerializer(source="organization")
    buyer = serializers.EmailField(source="buyer.email")
    refundable = money()
    can_refund = serializers.SerializerMethodField()

    class Meta:
        model = Purchase
        fields = [
            "id",
            "uuid",
            "listing",
            "buyer_organization",
            "buyer",
            *PURCHASE_MONEY_FIELDS,
            "can_refund",
            "paid_at",
            "created_at",
        ]

    def get_can_refund(self, sale: Purchase) -> bool:
        """Whether the caller may refund it now (it is active and theirs to refund)."""
        if not sale.is_active:
            return False
        # the list's rows share one answer per seller (the view passes the dict)
        cache: dict[int, bool] = self.context.get("can_refund", {})
        if sale.listing.seller_id not in cache:
            cache[sale.listing.seller_id] = can_refund(user=self.context["user"], purchase=sale)
        return cache[sale.listing.seller_id]


class SaleListApi(ListAPIView[Purchase]):
    """Purchases of your organizations' listings (every seller's for admins), newest first;
    filters: listing, status (pending purchases are not sales)."""

    request: AuthenticatedRequest

    serializer_class = SaleSerializer

    def get_queryset(self) -> QuerySet[Purchase]:
        if getattr(self, "swagger_fake_view", False):
            return Purchase.objects.none()
        _require_seller(self.request.user)
        rows = sale_list(user=self.request.user).order_by("-created_at", "-id")
        params = self.request.query_params
        if params.get("status"):
            if params["status"] not in Purchase.Status.values:
                raise serializers.ValidationError(
                    {"status": [f"One of {', '.join(Purchase.Status.values)}."]}
                )
            rows = rows.filter(status=params["status"])
        if params.get("listing"):
            if not params["listing"].isdigit():
                raise serializers.ValidationError({"listing": ["A listing id."]})
            rows = rows.filter(listing_id=int(params["listing"]))
        return rows

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "user": self.request.user, "can_refund": {}}

    @extend_schema(
        parameters=[
            OpenApiParameter("listing", int, description="A listing id."),
            OpenApiParameter("status", str, enum=Purchase.Status.values),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class SaleRefundApi(APIView):
    """Refunds all that is left of a sale, or `amount` of it; the buyer sees the reason."""

    class InputSerializer(serializers.Serializer[Any]):
        amount = money(required=False, allow_null=True, help_text="Default: all that is left.")
        reason = serializers.CharField(max_length=300)

    @extend_schema(request=InputSerializer, responses=SaleSerializer)
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        _require_seller(request.user)
        sale = sale_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sale = purchase_refund(by=request.user, purchase=sale, **data.validated_data)
        return Response(SaleSerializer(sale, context={"user": request.user}).data)


# --- Ledger and payouts (admins) ----------------------------------------------------------------


class LedgerAccountSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="account.pk")
    kind = serializers.CharField(source="account.kind")
    organization = serializers.IntegerField(source="account.organization_id", allow_null=True)
    organization_name = serializers.CharField(
        source="account.organization.name", default=None, allow_null=True
    )
    currency = serializers.CharField(source="account.currency")
    balance = money(help_text="Debits minus credits.")


class PayoutDueSerializer(serializers.Serializer[Any]):
    organization = serializers.IntegerField(source="organization.pk")
    organization_name = serializers.CharField(source="organization.name")
    currency = serializers.CharField()
    due = money()


class LedgerSerializer(serializers.Serializer[Any]):
    balanced = serializers.BooleanField(help_text="Every transaction and currency sums to zero.")
    trial_balance = CurrencyAmountSerializer(many=True, help_text="Must all be zero.")
    unbalanced_transactions = serializers.ListField(child=serializers.IntegerField())
    accounts = LedgerAccountSerializer(many=True)
    payouts_due = PayoutDueSerializer(many=True)


class LedgerApi(APIView):
    """Every ledger account with its balance, the trial balance per currency, whether the
    ledger balances, and what is due to each seller (administrators)."""

    @extend_schema(responses=LedgerSerializer)
    def get(self, request: AuthenticatedRequest) -> Response:
        _require_admin(request.user)
        check = ledger_check()
        body = {
            "balanced": check["balanced"],
            "trial_balance": [
                {"currency": c, "amount": a} for c, a in sorted(check["per_currency"].items())
            ],
            "unbalanced_transactions": check["unbalanced_transactions"],
            "accounts": ledger_balances(),
            "payouts_due": payouts_due_list(),
        }
        return Response(LedgerSerializer(body).data)


class PayoutSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    organization = serializers.IntegerField()
    currency = serializers.CharField()
    amount = money()
    memo = serializers.CharField()
    created_at = serializers.DateTimeField()


class PayoutCreateApi(APIView):
    """Records a payout to a seller made outside the platform (a bank transfer): all that is
    due, or `amount` of it (administrators)."""

    class InputSerializer(serializers.Serializer[Any]):
        organization = serializers.IntegerField()
        currency = serializers.CharField(min_length=3, max_length=3)
        amount = money(required=False, allow_null=True, help_text="Default: all that is due.")
        memo = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={201: PayoutSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        _require_admin(request.user)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        organization = get_object_or_404(Organization, pk=values.pop("organization"))
        posted = payout_record(
            by=request.user,
            organization=organization,
            currency=values["currency"].upper(),
            amount=values.get("amount"),
            memo=values["memo"],
        )
        return Response(
            PayoutSerializer(_payout_body(posted, organization)).data,
            status=status.HTTP_201_CREATED,
        )


def _payout_body(posted: LedgerTransaction, organization: Organization) -> dict[str, Any]:
    paid = sum(e.amount for e in posted.entries.all() if e.amount > 0)
    return {
        "id": posted.pk,
        "organization": organization.pk,
        "currency": posted.currency,
        "amount": paid,
        "memo": posted.memo,
        "created_at": posted.created_at,
    }


urlpatterns: list[URLPattern] = [
    path("market/revenue/", RevenueApi.as_view(), name="market-revenue"),
    path("market/sales/", SaleListApi.as_view(), name="market-sale-list"),
    path("market/sales/<int:pk>/refund/", SaleRefundApi.as_view(), name="market-sale-refund"),
    path("market/ledger/", LedgerApi.as_view(), name="market-ledger"),
    path("market/payouts/", PayoutCreateApi.as_view(), name="market-payout-create"),
]
