"""A listing's pictures under /api/v1/market/: add, reorder and remove them (the seller's team
and administrators), and the picture file itself for whoever may see the listing."""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.marketplace.api.listings import ListingImageSerializer
from apps.marketplace.http import image_file_response
from apps.marketplace.selectors.listings import listing_get_for_user, listing_image_get_for_user
from apps.marketplace.services.listing_images import (
    listing_image_add,
    listing_image_delete,
    listing_image_move,
)
from apps.users.types import AuthenticatedRequest


class ListingImageAddApi(APIView):
    """Adds a PNG, JPEG or WebP picture (multipart field `image`, at most 5 MB, 8 per listing)."""

    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer[Any]):
        image = serializers.FileField()
        alt = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={201: ListingImageSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        listing = listing_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        image = listing_image_add(
            by=request.user,
            listing=listing,
            file=data.validated_data["image"],
            alt=data.validated_data.get("alt", ""),
        )
        return Response(
            ListingImageSerializer(image, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class ListingImageMoveApi(APIView):
    """Puts the image at `position` among the listing's images (1 is the cover on cards)."""

    class InputSerializer(serializers.Serializer[Any]):
        position = serializers.IntegerField(min_value=1, help_text="1 is the cover image.")

    @extend_schema(request=InputSerializer, responses={200: ListingImageSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        image = listing_image_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        moved = listing_image_move(
            by=request.user, image=image, position=data.validated_data["position"]
        )
        return Response(ListingImageSerializer(moved, context={"request": request}).data)


class ListingImageDeleteApi(APIView):
    @extend_schema(responses={204: OpenApiResponse(description="Removed.")})
    def delete(self, request: AuthenticatedRequest, pk: int) -> Response:
        image = listing_image_get_for_user(user=request.user, pk=pk)
        listing_image_delete(by=request.user, image=image)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ListingImageFileApi(APIView):
    """The picture itself (PNG, JPEG or WebP), for a listing the caller may see."""

    def perform_content_negotiation(self, request: Any, force: bool = False) -> Any:
        # the picture is not rendered by DRF, so an image-only Accept header must not be a 406;
        # errors still come as the API's JSON
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(responses={200: OpenApiTypes.BINARY})
    def get(self, request: AuthenticatedRequest, pk: int) -> Any:
        return image_file_response(listing_image_get_for_user(user=request.user, pk=pk))


urlpatterns = [
    path(
        "market/listings/<int:pk>/images/",
        ListingImageAddApi.as_view(),
        name="market-listing-image-add",
    ),
    path("market/images/<int:pk>/", ListingImageDeleteApi.as_view(), name="market-image-delete"),
    path("market/images/<int:pk>/move/", ListingImageMoveApi.as_view(), name="market-image-move"),
    path("market/images/<int:pk>/file/", ListingImageFileApi.as_view(), name="market-image-file"),
]
