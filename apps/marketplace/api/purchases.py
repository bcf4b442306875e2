"""Buying through the API. A client sends an `Idempotency-Key` header (or `client_key` in the
body) with each purchase; resending the same request with the same key returns the first
answer's purchase and never charges twice."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import error_body
from apps.marketplace.models import Listing, Purchase
from apps.marketplace.payments import payment_methods
from apps.marketplace.selectors.listings import listing_get_for_user
from apps.marketplace.selectors.sales import purchase_get_for_user, purchase_list
from apps.marketplace.services import purchase_create
from apps.users.models import Organization
from apps.users.types import AuthenticatedRequest


class PurchaseListingSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    title = serializers.CharField()
    kind = serializers.CharField()
    seller = serializers.CharField(source="seller.name")


# what a purchase cost and where its money stands: the buyer's view (here) and the seller's
# (api/revenue.py's SaleSerializer) show the same
PURCHASE_MONEY_FIELDS = [
    "quantity",
    "unit_price",
    "amount",
    "currency",
    "commission_rate",
    "commission",
    "refunded_amount",
    "refundable",
    "status",
]


class PurchaseSerializer(serializers.ModelSerializer[Purchase]):
    listing = PurchaseListingSerializer()
    version = serializers.IntegerField(source="version.number")
    latest_version = serializers.SerializerMethodField()
    buyer = serializers.EmailField(source="buyer.email")
    organization = serializers.IntegerField(source="organization_id")
    usable = serializers.BooleanField(source="is_active")
    refundable = serializers.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        model = Purchase
        fields = [
            "id",
            "uuid",
            "listing",
            "version",
            "latest_version",
            "buyer",
            "organization",
            *PURCHASE_MONEY_FIELDS,
            "usable",
            "provider",
            "provider_ref",
            "failure_reason",
            "paid_at",
            "created_at",
        ]

    def get_latest_version(self, purchase: Purchase) -> int | None:
        # from the prefetched versions (the list prefetches them): no query per row
        return max((v.number for v in purchase.listing.versions.all()), default=None)


class PurchaseListApi(ListAPIView[Purchase]):
    """Purchases of your organizations (every purchase for admins); filters: status, kind,
    listing. POST buys a listing (see the Idempotency-Key header)."""

    request: AuthenticatedRequest

    serializer_class = PurchaseSerializer

    class InputSerializer(serializers.Serializer[Any]):
        listing = serializers.IntegerField()
        quantity = serializers.IntegerField(required=False, default=1, min_value=1)
        method = serializers.ChoiceField(
            choices=["fake_ok", "fake_declined", "fake_unavailable"],
            required=False,
            default="fake_ok",
            help_text="The payment method (the fake provider's test methods in development).",
        )
        organization = serializers.IntegerField(required=False)
        client_key = serializers.CharField(
            required=False, max_length=64, help_text="Or send the Idempotency-Key header."
        )

    def get_queryset(self) -> QuerySet[Purchase]:
        if getattr(self, "swagger_fake_view", False):
            return Purchase.objects.none()
        rows = purchase_list(user=self.request.user)
        params = self.request.query_params
        for name, lookup, choices in (
            ("status", "status", Purchase.Status.values),
            ("kind", "listing__kind", Listing.Kind.values),
        ):
            value = params.get(name)
            if value:
                if value not in choices:
                    raise serializers.ValidationError({name: [f"One of {', '.join(choices)}."]})
                rows = rows.filter(**{lookup: value})
        if params.get("listing"):
            if not params["listing"].isdigit():
                raise serializers.ValidationError({"listing": ["A listing id."]})
            rows = rows.filter(listing_id=int(params["listing"]))
        return rows.prefetch_related("listing__versions").select_related("version")

    @extend_schema(
        request=InputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="A new key per purchase; resend it with a retried request.",
            )
        ],
        responses={
            201: PurchaseSerializer,
            200: PurchaseSerializer,
            402: OpenApiTypes.OBJECT,
            503: OpenApiTypes.OBJECT,
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        key = request.headers.get("Idempotency-Key") or values.get("client_key") or ""
        if not key:
            raise serializers.ValidationError(
                {
                    "client_key": [
                        "Send an Idempotency-Key header (or client_key), new per purchase."
                    ]
                }
            )
        listing = listing_get_for_user(user=request.user, pk=values["listing"])
        organization = None
        if "organization" in values:
            organization = get_object_or_404(Organization, pk=values["organization"])
        purchase, created = purchase_create(
            by=request.user,
            listing=listing,
            client_key=key,
            quantity=values["quantity"],
            method=values["method"],
            organization=organization,
        )
        body = PurchaseSerializer(purchase).data
        if purchase.status == Purchase.Status.FAILED:
            return Response(
                error_body("payment_declined", purchase.failure_reason, {"purchase": purchase.pk}),
                status=status.HTTP_402_PAYMENT_REQUIRED,
            )
        if purchase.status == Purchase.Status.PENDING:
            return Response(
                error_body(
                    "payment_provider_unavailable",
                    f"{purchase.failure_reason} Resend the same request with the same key.",
                    {"purchase": purchase.pk},
                ),
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "5"},
            )
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class PurchaseDetailApi(APIView):
    @extend_schema(responses=PurchaseSerializer)
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        return Response(PurchaseSerializer(purchase_get_for_user(user=request.user, pk=pk)).data)


class PaymentMethodListApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            "PaymentMethod",
            {"method": serializers.CharField(), "label": serializers.CharField()},
            many=True,
        )
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response([{"method": k, "label": v} for k, v in payment_methods().items()])


urlpatterns: list[URLPattern] = [
    path("market/purchases/", PurchaseListApi.as_view(), name="market-purchase-list"),
    path("market/purchases/<int:pk>/", PurchaseDetailApi.as_view(), name="market-purchase-detail"),
    path(
        "market/payment-methods/",
        PaymentMethodListApi.as_view(),
        name="market-payment-method-list",
    ),
]
