"""The listings API under /api/v1/market/: browse (everyone signed in), the caller's own
listings, create / change / version / publish / retire (the seller's team and administrators).
A listing the caller can't see is 404; one they see but may not change is 403. Its pictures are
in listing_images.py, a seller's public figures in sellers.py."""

from __future__ import annotations

from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import F, Prefetch, QuerySet, Window
from django.db.models.functions import RowNumber
from django.urls import path, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.serializers import many_data
from apps.marketplace.models import Listing, ListingImage, ListingVersion
from apps.marketplace.selectors.listings import (
    SORTS,
    listing_browse,
    listing_get_for_user,
    listing_manageable,
)
from apps.marketplace.selectors.sales import owned_listing_ids
from apps.marketplace.services.listings import (
    listing_create,
    listing_new_version,
    listing_publish,
    listing_retire,
    listing_update,
)
from apps.users.models import Organization
from apps.users.roles import Action, user_can
from apps.users.types import AuthenticatedRequest
from apps.vendors.models import FabricationNode


def _money(**kwargs: Any) -> Any:
    return serializers.DecimalField(max_digits=14, decimal_places=2, **kwargs)


_T = TypeVar("_T")


class ListingSellerSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ListingVersionSerializer(serializers.ModelSerializer[ListingVersion]):
    content = serializers.JSONField()

    class Meta:
        model = ListingVersion
        fields = ["number", "changelog", "created_at", "content"]


class ListingImageSerializer(serializers.ModelSerializer[ListingImage]):
    url = serializers.SerializerMethodField()

    class Meta:
        model = ListingImage
        fields = ["id", "url", "alt", "width", "height"]

    def get_url(self, image: ListingImage) -> str:
        """The picture through the API (it checks who asks; media is not served publicly)."""
        request = self.context.get("request")
        url = reverse("api:market-image-file", kwargs={"pk": image.pk})
        return request.build_absolute_uri(url) if request is not None else url


class ListingSerializer(serializers.ModelSerializer[Listing]):
    price = _money()
    price_unit = serializers.CharField(read_only=True)
    tags = serializers.SerializerMethodField()
    materials = serializers.SerializerMethodField()
    processes = serializers.SerializerMethodField()
    seller = ListingSellerSerializer()
    latest_version = serializers.SerializerMethodField()
    images = serializers.SerializerMethodField()
    node_kind = serializers.SerializerMethodField()
    min_hours = serializers.SerializerMethodField()
    max_hours = serializers.SerializerMethodField()
    owned = serializers.SerializerMethodField()

    class Meta:
        model = Listing
        fields = [
            "id",
            "kind",
            "status",
            "title",
            "summary",
            "description",
            "price",
            "currency",
            "price_unit",
            "licence",
            "tags",
            "materials",
            "processes",
            "seller",
            "rating_avg",
            "rating_count",
            "sales_count",
            "latest_version",
            "images",
            "node_kind",
            "min_hours",
            "max_hours",
            "owned",
            "published_at",
            "retired_at",
        ]

    def _facet(self, listing: Listing, facet: str) -> list[str]:
        return [f.value for f in listing.facets.all() if f.facet == facet]

    def get_tags(self, listing: Listing) -> list[str]:
        return self._facet(listing, "tag")

    def get_materials(self, listing: Listing) -> list[str]:
        return self._facet(listing, "material")

    def get_processes(self, listing: Listing) -> list[str]:
        return self._facet(listing, "process")

    @extend_schema(responses=ListingVersionSerializer(allow_null=True))
    def get_latest_version(self, listing: Listing) -> dict[str, Any] | None:
        latest = getattr(listing, "latest_versions", None)
        version = latest[0] if latest else listing.versions.order_by("-number").first()
        return ListingVersionSerializer(version).data if version else None

    @extend_schema(responses=ListingImageSerializer(many=True))
    def get_images(self, listing: Listing) -> list[dict[str, Any]]:
        images = listing.images.all()
        return many_data(ListingImageSerializer(images, many=True, context=self.context))

    def _capacity(self, listing: Listing, value: _T) -> _T | None:
        return value if listing.kind == Listing.Kind.CAPACITY else None

    def get_node_kind(self, listing: Listing) -> str | None:
        return self._capacity(listing, listing.node_kind)

    def get_min_hours(self, listing: Listing) -> int | None:
        return self._capacity(listing, listing.min_hours)

    def get_max_hours(self, listing: Listing) -> int | None:
        return self._capacity(listing, listing.max_hours)

    def get_owned(self, listing: Listing) -> bool:
        owned = self.context.get("owned")
        if owned is None:
            request = self.context.get("request")
            owned = owned_listing_ids(user=request.user) if request is not None else set()
        return listing.pk in owned


def _with_api_fields(qs: QuerySet[Listing]) -> QuerySet[Listing]:
    """Every image and only the newest version of each listing, in two more queries."""
    latest = ListingVersion.objects.annotate(
        row=Window(RowNumber(), partition_by=[F("listing_id")], order_by=[F("number").desc()])
    ).filter(row=1)
    return qs.prefetch_related(
        "images", Prefetch("versions", queryset=latest, to_attr="latest_versions")
    )


def listing_data(request: Request, listing: Listing) -> dict[str, Any]:
    return ListingSerializer(listing, context={"request": request}).data


class _ListingListBase(ListAPIView[Listing]):
    serializer_class = ListingSerializer
    filter_backends: list[Any] = []

    def list(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        rows = list(self.paginate_queryset(_with_api_fields(self.get_queryset())) or [])
        context = {"request": request, "owned": owned_listing_ids(user=request.user)}
        return self.get_paginated_response(ListingSerializer(rows, many=True, context=context).data)


class ListingListApi(_ListingListBase):
    """Published listings (every signed-in user), filtered and sorted; POST lists something new
    as a draft of the caller's organization (sellers)."""

    request: AuthenticatedRequest

    class FilterSerializer(serializers.Serializer[Any]):
        q = serializers.CharField(
            required=False,
            allow_blank=True,
            help_text="Words in the title, summary, description or tags; all must match.",
        )
        kind = serializers.ChoiceField(choices=Listing.Kind.choices, required=False)
        material = serializers.CharField(required=False, allow_blank=True)
        process = serializers.CharField(required=False, allow_blank=True)
        tag = serializers.CharField(required=False, allow_blank=True)
        seller = serializers.IntegerField(required=False, min_value=1)
        currency = serializers.ChoiceField(
            choices=list(settings.MARKETPLACE_CURRENCIES),
            required=False,
            help_text="Only listings priced in this currency; price_min and price_max are in it "
            "(default: the platform's default currency, when a price bound is given).",
        )
        price_min = _money(required=False, min_value=0)
        price_max = _money(required=False, min_value=0)
        rating_min = serializers.DecimalField(
            max_digits=3, decimal_places=2, required=False, min_value=0, max_value=5
        )
        sort = serializers.ChoiceField(choices=list(SORTS), required=False, default="newest")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            low, high = attrs.get("price_min"), attrs.get("price_max")
            if low is not None and high is not None and low > high:
                raise serializers.ValidationError({"price_max": ["At least price_min."]})
            return attrs

    class InputSerializer(serializers.Serializer[Any]):
        kind = serializers.ChoiceField(choices=Listing.Kind.choices)
        title = serializers.CharField(max_length=160)
        summary = serializers.CharField(max_length=300, required=False, allow_blank=True)
        description = serializers.CharField(required=False, allow_blank=True)
        price = _money()
        currency = serializers.CharField(max_length=3, required=False)
        licence = serializers.ChoiceField(choices=Listing.Licence.choices, required=False)
        tags = serializers.ListField(child=serializers.CharField(), required=False)
        materials = serializers.ListField(child=serializers.CharField(), required=False)
        processes = serializers.ListField(child=serializers.CharField(), required=False)
        template = serializers.IntegerField(
            required=False,
            help_text="Templates: the id of your organization's job template (or give `content`).",
        )
        content = serializers.JSONField(
            required=False,
            help_text="Playbooks: {steps: [{title, instructions, settings, checks}], "
            "materials, processes}. Templates without a job template: {parameters: {scale: "
            "{min, default, max}, quantity: {min, default, max}}, parts: [{name, material, "
            "process, quantity, size_x_mm, size_y_mm, size_z_mm, complexity}]}.",
        )
        node_kind = serializers.ChoiceField(
            choices=FabricationNode.Kind.choices, required=False, help_text="Capacity."
        )
        min_hours = serializers.IntegerField(required=False)
        max_hours = serializers.IntegerField(required=False)
        organization = serializers.IntegerField(
            required=False, help_text="The selling organization (default: your first)."
        )

        def validate_organization(self, value: int) -> Organization:
            org = Organization.objects.filter(pk=value).first()
            if org is None:
                raise serializers.ValidationError("No such organization.")
            return org

    def get_queryset(self) -> QuerySet[Listing]:
        if getattr(self, "swagger_fake_view", False):
            return Listing.objects.none()
        filters = self.FilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return listing_browse(user=self.request.user, **filters.validated_data)

    @extend_schema(parameters=[FilterSerializer])
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=InputSerializer, responses={201: ListingSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        listing = listing_create(by=request.user, **data.validated_data)
        return Response(listing_data(request, listing), status=status.HTTP_201_CREATED)


class ListingMineApi(_ListingListBase):
    """The caller's organizations' listings in any status (every listing for admins)."""

    request: AuthenticatedRequest

    class FilterSerializer(serializers.Serializer[Any]):
        status = serializers.ChoiceField(choices=Listing.Status.choices, required=False)

    def get_queryset(self) -> QuerySet[Listing]:
        if getattr(self, "swagger_fake_view", False):
            return Listing.objects.none()
        if not user_can(self.request.user, Action.MARKET_SELL):
            raise PermissionDenied("Your role does not sell on the marketplace.")
        filters = self.FilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return listing_manageable(user=self.request.user, **filters.validated_data)

    @extend_schema(parameters=[FilterSerializer])
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


def _visible(request: AuthenticatedRequest, pk: int) -> Listing:
    listing = listing_get_for_user(user=request.user, pk=pk)
    return _with_api_fields(Listing.objects.filter(pk=listing.pk).select_related("seller"))[0]


class ListingDetailApi(APIView):
    """One listing. PATCH changes what it says and costs (its team; not once retired); a new
    price applies to later purchases only."""

    class InputSerializer(serializers.Serializer[Any]):
        title = serializers.CharField(max_length=160, required=False)
        summary = serializers.CharField(max_length=300, required=False, allow_blank=True)
        description = serializers.CharField(required=False, allow_blank=True)
        price = _money(required=False)
        currency = serializers.CharField(max_length=3, required=False)
        licence = serializers.ChoiceField(choices=Listing.Licence.choices, required=False)
        tags = serializers.ListField(child=serializers.CharField(), required=False)
        materials = serializers.ListField(child=serializers.CharField(), required=False)
        processes = serializers.ListField(child=serializers.CharField(), required=False)
        min_hours = serializers.IntegerField(required=False)
        max_hours = serializers.IntegerField(required=False)

    @extend_schema(responses={200: ListingSerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        return Response(listing_data(request, _visible(request, pk)))

    @extend_schema(request=InputSerializer, responses={200: ListingSerializer})
    def patch(self, request: AuthenticatedRequest, pk: int) -> Response:
        listing = listing_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        listing_update(by=request.user, listing=listing, **data.validated_data)
        return Response(listing_data(request, _visible(request, pk)))


class ListingPublishApi(APIView):
    """Draft -> published (its content checked; capacity needs approved nodes of the kind)."""

    @extend_schema(request=None, responses={200: ListingSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        listing = listing_get_for_user(user=request.user, pk=pk)
        listing_publish(by=request.user, listing=listing)
        return Response(listing_data(request, _visible(request, pk)))


class ListingRetireApi(APIView):
    """Retired for good: no new sales or changes; buyers keep using it. Administrators may
    retire any listing."""

    class InputSerializer(serializers.Serializer[Any]):
        reason = serializers.CharField(max_length=300, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={200: ListingSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        listing = listing_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        listing_retire(by=request.user, listing=listing, **data.validated_data)
        return Response(listing_data(request, _visible(request, pk)))


class ListingVersionsApi(ListAPIView[ListingVersion]):
    """A listing's versions, newest first. POST: a published listing's next version (with a
    changelog), or a draft's content rewritten; a template without `content` takes its job
    template's parts and parameters again."""

    request: AuthenticatedRequest

    serializer_class = ListingVersionSerializer
    filter_backends: list[Any] = []

    class InputSerializer(serializers.Serializer[Any]):
        changelog = serializers.CharField(max_length=500, required=False, allow_blank=True)
        content = serializers.JSONField(required=False)

    def get_queryset(self) -> QuerySet[ListingVersion]:
        if getattr(self, "swagger_fake_view", False):
            return ListingVersion.objects.none()
        listing = listing_get_for_user(user=self.request.user, pk=self.kwargs["pk"])
        return listing.versions.order_by("-number")

    @extend_schema(request=InputSerializer, responses={201: ListingVersionSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        listing = listing_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = listing_new_version(by=request.user, listing=listing, **data.validated_data)
        return Response(ListingVersionSerializer(version).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("market/listings/", ListingListApi.as_view(), name="market-listing-list"),
    path("market/listings/mine/", ListingMineApi.as_view(), name="market-listing-mine"),
    path("market/listings/<int:pk>/", ListingDetailApi.as_view(), name="market-listing-detail"),
    path(
        "market/listings/<int:pk>/publish/",
        ListingPublishApi.as_view(),
        name="market-listing-publish",
    ),
    path(
        "market/listings/<int:pk>/retire/", ListingRetireApi.as_view(), name="market-listing-retire"
    ),
    path(
        "market/listings/<int:pk>/versions/",
        ListingVersionsApi.as_view(),
        name="market-listing-versions",
    ),
]
