"""The marketplace API for using purchases and reviewing them (under /api/v1/market/):
instantiate a bought template, attach a playbook to parts, book capacity for a job, list and
remove uses; read a listing's reviews, review a purchase, edit a review, reply as the seller.
Purchases are looked up among the caller's organizations' (404 otherwise)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import URLPattern, path, reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.model_fields import model_serializer_field
from apps.jobs.api.jobs import JobRunInputSerializer
from apps.jobs.models import Job
from apps.marketplace.models import Purchase, PurchaseUse, Review
from apps.marketplace.selectors.listings import listing_get_for_user
from apps.marketplace.selectors.reviews import review_get, review_list
from apps.marketplace.selectors.sales import purchase_get_for_user
from apps.marketplace.selectors.uses import (
    purchase_use_list,
    use_get_for_user,
)
from apps.marketplace.services.reviews import (
    MAX_TEXT,
    review_create,
    review_delete,
    review_reply,
    review_update,
)
from apps.marketplace.services.uses import (
    capacity_book,
    capacity_release,
    playbook_attach_parts,
    playbook_detach,
    purchase_instantiate,
)
from apps.users.types import AuthenticatedRequest


class UseSerializer(serializers.ModelSerializer[PurchaseUse]):
    purchase = serializers.IntegerField(source="purchase_id", read_only=True)
    job = serializers.IntegerField(source="job_id", read_only=True)
    job_status = serializers.CharField(source="job.status", read_only=True)
    part = serializers.IntegerField(source="part_id", read_only=True, allow_null=True)
    part_name = serializers.CharField(source="part.name", default=None, read_only=True)
    hours = serializers.DecimalField(max_digits=10, decimal_places=2, read_only=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True)

    class Meta:
        model = PurchaseUse
        fields = [
            "id",
            "purchase",
            "job",
            "job_status",
            "part",
            "part_name",
            "hours",
            "created_by",
            "created_at",
        ]


class ReviewSerializer(serializers.ModelSerializer[Review]):
    listing = serializers.IntegerField(source="listing_id", read_only=True)
    purchase = serializers.IntegerField(source="purchase_id", read_only=True)
    author_name = serializers.SerializerMethodField()
    reply_at = serializers.DateTimeField(source="replied_at", read_only=True, allow_null=True)

    class Meta:
        model = Review
        fields = [
            "id",
            "listing",
            "purchase",
            "stars",
            "text",
            "author_name",
            "reply",
            "reply_at",
            "created_at",
            "updated_at",
        ]

    def get_author_name(self, review: Review) -> str:
        return review.author.get_full_name() or review.author.email


def _purchase(request: AuthenticatedRequest, pk: int) -> Purchase:
    return purchase_get_for_user(user=request.user, pk=pk)


class PurchaseInstantiateApi(APIView):
    """A job from a bought template (its latest version) in the purchase's organization, with
    parameter values; validated and scheduled like any other job."""

    class InputSerializer(JobRunInputSerializer):
        """Parameter values; the job's title (default: the listing's) and how it runs."""

        parameters = serializers.DictField(required=False, default=dict)
        title = model_serializer_field(Job, "title", required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer[Any]):
        id = serializers.IntegerField()
        title = serializers.CharField()
        status = serializers.CharField()
        url = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        purchase = _purchase(request, pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        values = fields.pop("parameters")
        job = purchase_instantiate(by=request.user, purchase=purchase, values=values, **fields)
        out = {
            "id": job.pk,
            "title": job.title,
            "status": job.status,
            "url": reverse("jobs:detail", args=[job.pk]),
        }
        return Response(self.OutputSerializer(out).data, status=status.HTTP_201_CREATED)


class PurchaseAttachApi(APIView):
    """Attaches a bought playbook to parts of the organization's open jobs. 200 with what was
    attached and, by index in `parts`, why the others were not; 400 when none could be."""

    class InputSerializer(serializers.Serializer[Any]):
        parts = serializers.ListField(
            child=serializers.IntegerField(min_value=1), min_length=1, max_length=200
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            200: inline_serializer(
                "MarketAttachResult",
                {
                    "attached": UseSerializer(many=True),
                    # by index in `parts`: why that part was not attached
                    "errors": serializers.DictField(
                        child=serializers.ListField(child=serializers.CharField())
                    ),
                },
            )
        },
    )
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        purchase = _purchase(request, pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attached, errors = playbook_attach_parts(
            by=request.user, purchase=purchase, parts=data.validated_data["parts"]
        )
        by_index = {str(index): lines for index, lines in errors.items()}
        if not attached:
            raise ApiValidationError(by_index)
        return Response({"attached": UseSerializer(attached, many=True).data, "errors": by_index})


class PurchaseBookApi(APIView):
    """Books bought capacity for a job: its parts then run only on the seller's nodes."""

    class InputSerializer(serializers.Serializer[Any]):
        job = serializers.IntegerField(min_value=1)

    @extend_schema(request=InputSerializer, responses={201: UseSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        purchase = _purchase(request, pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = Job.objects.filter(
            pk=data.validated_data["job"], organization_id=purchase.organization_id
        ).first()
        if job is None:
            raise ApiValidationError(
                {"job": [f"No job {data.validated_data['job']} of {purchase.organization.name}."]}
            )
        use = capacity_book(by=request.user, purchase=purchase, job=job)
        return Response(UseSerializer(use).data, status=status.HTTP_201_CREATED)


class PurchaseUseListApi(ListAPIView[PurchaseUse]):
    """What a purchase of your organization was used for: jobs, parts, booked hours."""

    request: AuthenticatedRequest

    serializer_class = UseSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[PurchaseUse]:
        if getattr(self, "swagger_fake_view", False):
            return PurchaseUse.objects.none()
        purchase = _purchase(self.request, self.kwargs["pk"])
        return purchase_use_list(purchase=purchase)


class UseDeleteApi(APIView):
    """Detaches a playbook from its part, or releases a capacity booking (before its parts
    start). A job made from a template stays on record."""

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: AuthenticatedRequest, pk: int) -> Response:
        use = use_get_for_user(user=request.user, pk=pk)
        if use.part_id is not None:
            playbook_detach(by=request.user, use=use)
        else:
            capacity_release(by=request.user, use=use)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ListingReviewListApi(ListAPIView[Review]):
    """A listing's reviews, newest first, with the seller's replies."""

    request: AuthenticatedRequest

    serializer_class = ReviewSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Review]:
        if getattr(self, "swagger_fake_view", False):
            return Review.objects.none()
        listing = listing_get_for_user(user=self.request.user, pk=self.kwargs["pk"])
        return review_list(listing=listing)


class ReviewInputSerializer(serializers.Serializer[Any]):
    stars = serializers.IntegerField(min_value=1, max_value=5)
    text = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True, default="")


class PurchaseReviewApi(APIView):
    """The buyer reviews a purchase once a job with it has completed (one review each)."""

    @extend_schema(request=ReviewInputSerializer, responses={201: ReviewSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        purchase = _purchase(request, pk)
        data = ReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        review = review_create(by=request.user, purchase=purchase, **data.validated_data)
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)


class ReviewDetailApi(APIView):
    """PATCH: the author edits their review; DELETE: the author (or an administrator)
    removes it."""

    class InputSerializer(serializers.Serializer[Any]):
        stars = serializers.IntegerField(min_value=1, max_value=5, required=False)
        text = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={200: ReviewSerializer})
    def patch(self, request: AuthenticatedRequest, pk: int) -> Response:
        review = review_get(pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changed = {"stars": review.stars, "text": review.text, **data.validated_data}
        review = review_update(by=request.user, review=review, **changed)
        return Response(ReviewSerializer(review).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: AuthenticatedRequest, pk: int) -> Response:
        review_delete(by=request.user, review=review_get(pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReviewReplyApi(APIView):
    """The seller replies to a review (writing again replaces the reply)."""

    class InputSerializer(serializers.Serializer[Any]):
        text = serializers.CharField(max_length=MAX_TEXT)

    @extend_schema(request=InputSerializer, responses={200: ReviewSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        review = review_get(pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        review = review_reply(by=request.user, review=review, text=data.validated_data["text"])
        return Response(ReviewSerializer(review).data)


urlpatterns: list[URLPattern] = [
    path(
        "market/purchases/<int:pk>/instantiate/",
        PurchaseInstantiateApi.as_view(),
        name="market-purchase-instantiate",
    ),
    path(
        "market/purchases/<int:pk>/attach/",
        PurchaseAttachApi.as_view(),
        name="market-purchase-attach",
    ),
    path("market/purchases/<int:pk>/book/", PurchaseBookApi.as_view(), name="market-purchase-book"),
    path(
        "market/purchases/<int:pk>/uses/",
        PurchaseUseListApi.as_view(),
        name="market-purchase-uses",
    ),
    path(
        "market/purchases/<int:pk>/review/",
        PurchaseReviewApi.as_view(),
        name="market-purchase-review",
    ),
    path("market/uses/<int:pk>/", UseDeleteApi.as_view(), name="market-use-delete"),
    path(
        "market/listings/<int:pk>/reviews/",
        ListingReviewListApi.as_view(),
        name="market-listing-reviews",
    ),
    path("market/reviews/<int:pk>/", ReviewDetailApi.as_view(), name="market-review-detail"),
    path("market/reviews/<int:pk>/reply/", ReviewReplyApi.as_view(), name="market-review-reply"),
]
