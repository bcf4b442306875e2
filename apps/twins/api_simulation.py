"""API of the twins' simulations (ageing, physics scenarios) and of the spatial mixer."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.schema import ErrorSerializer
from apps.twins import ageing, mixer, physics
from apps.twins.models import DigitalTwin, MixRecipe, Simulation
from apps.twins.selectors import recipe_list, simulation_list, twin_get_for_user
from apps.twins.services import recipe_outcome, recipe_save, simulation_start
from apps.users.models import Organization
from apps.users.types import AuthenticatedRequest
from apps.vendors.models import FabricationNode


class SimulationSerializer(serializers.ModelSerializer[Simulation]):
    created_by = serializers.CharField(source="created_by.email", default=None, read_only=True)
    summary = serializers.SerializerMethodField()

    class Meta:
        model = Simulation
        fields = [
            "id",
            "twin",
            "kind",
            "params",
            "status",
            "progress",
            "stage",
            "error",
            "summary",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_summary(self, simulation: Simulation) -> dict[str, Any] | None:
        return simulation.summary()


class SimulationDetailSerializer(SimulationSerializer):
    class Meta(SimulationSerializer.Meta):
        fields = [*SimulationSerializer.Meta.fields, "result"]


class AgeingParams(serializers.Serializer[None]):
    component = serializers.ChoiceField(choices=list(ageing.DEFAULTS), required=False)
    avg_rpm = serializers.FloatField()
    load_n = serializers.FloatField()
    temperature_c = serializers.FloatField()
    duty_cycle = serializers.FloatField()
    horizon_h = serializers.FloatField(required=False)
    threshold = serializers.FloatField(required=False)
    steps = serializers.IntegerField(required=False)
    samples = serializers.IntegerField(required=False, min_value=10, max_value=5000)


class ScenarioParams(serializers.Serializer[None]):
    scenarios = serializers.ListField(
        child=serializers.ChoiceField(choices=list(physics.SCENARIOS)),
        required=False,
        min_length=1,
    )
    hours = serializers.FloatField(required=False)
    step_minutes = serializers.FloatField(required=False)
    machine_kind = serializers.ChoiceField(choices=FabricationNode.Kind.choices, required=False)
    use_telemetry = serializers.BooleanField(required=False, default=True)
    seed_minutes = serializers.FloatField(
        required=False,
        min_value=physics.SEED_MINUTES_RANGE[0],
        max_value=physics.SEED_MINUTES_RANGE[1],
        help_text="minutes of telemetry the scenarios start from (default 60)",
    )


PARAMS = {Simulation.Kind.AGEING: AgeingParams, Simulation.Kind.SCENARIOS: ScenarioParams}


class SimulationFilter(django_filters.FilterSet):
    class Meta:
        model = Simulation
        fields = ["kind", "status"]


class SimulationListApi(ListAPIView[Simulation]):
    """A twin's simulations, newest first (filters: kind, status), or start one: `kind` ageing
    (params: component, avg_rpm, load_n, temperature_c, duty_cycle, horizon_h, threshold,
    steps, samples) or scenarios (params: scenarios, hours, step_minutes, machine_kind,
    use_telemetry, seed_minutes). 202: it runs in the background; poll its detail for `progress`."""

    request: AuthenticatedRequest
    serializer_class = SimulationSerializer
    filterset_class = SimulationFilter

    class InputSerializer(serializers.Serializer[None]):
        kind = serializers.ChoiceField(choices=Simulation.Kind.choices)
        params = serializers.DictField(required=False, default=dict)

    def get_queryset(self) -> QuerySet[Simulation]:
        if getattr(self, "swagger_fake_view", False):
            return Simulation.objects.none()
        twin = twin_get_for_user(user=self.request.user, pk=self.kwargs["pk"])
        return simulation_list(twin=twin)

    @extend_schema(request=InputSerializer, responses={202: SimulationSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        twin = twin_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        kind = data.validated_data["kind"]
        params = PARAMS[kind](data=data.validated_data["params"])
        if not params.is_valid():
            raise serializers.ValidationError(
                {f"params.{name}": errors for name, errors in params.errors.items()}
            )
        simulation = simulation_start(
            by=request.user, twin=twin, kind=kind, params=dict(params.validated_data)
        )
        return Response(SimulationSerializer(simulation).data, status=status.HTTP_202_ACCEPTED)


def _simulation(request: AuthenticatedRequest, pk: int, sid: int) -> Simulation:
    twin = twin_get_for_user(user=request.user, pk=pk)
    simulation = simulation_list(twin=twin).filter(pk=sid).first()
    if simulation is None:
        raise Http404
    return simulation


class SimulationDetailApi(APIView):
    """One simulation: status, progress, and when it succeeded its whole result."""

    @extend_schema(responses={200: SimulationDetailSerializer})
    def get(self, request: AuthenticatedRequest, pk: int, sid: int) -> Response:
        return Response(SimulationDetailSerializer(_simulation(request, pk, sid)).data)


def simulation_rows(simulation: Simulation) -> list[dict[str, Any]]:
    """The result's time series as flat rows (ageing: the trajectory with the uncertainty band;
    scenarios: every scenario's series, with its name)."""
    result = simulation.result or {}
    if simulation.kind == Simulation.Kind.AGEING:
        band = {p["time_hours"]: p for p in result.get("uncertainty", {}).get("band", [])}
        return [
            {
                **point,
                "failure_probability_p10": band.get(point["time_hours"], {}).get("p10"),
                "failure_probability_p90": band.get(point["time_hours"], {}).get("p90"),
            }
            for point in result.get("trajectory", [])
        ]
    return [
        {"scenario": name, **point}
        for name, run in result.get("scenarios", {}).items()
        for point in run["series"]
    ]


class SimulationExportApi(APIView):
    """The result as a file: `json` (everything) or `csv` (the time series)."""

    @extend_schema(
        parameters=[OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=["json", "csv"])],
        responses={
            (200, "application/json"): OpenApiTypes.BINARY,
            (200, "text/csv"): OpenApiTypes.BINARY,
            400: OpenApiResponse(ErrorSerializer, description="The simulation has no result yet."),
        },
    )
    def get(self, request: AuthenticatedRequest, pk: int, sid: int, fmt: str) -> HttpResponse:
        if fmt not in ("json", "csv"):
            raise Http404
        simulation = _simulation(request, pk, sid)
        if simulation.status != Simulation.Status.SUCCEEDED:
            raise serializers.ValidationError(
                {"status": [f"The simulation is {simulation.status}; only results export."]}
            )
        name = f"twin-{pk}-{simulation.kind}-{simulation.pk}"
        if fmt == "json":
            body = json.dumps(
                {"simulation": simulation.pk, "kind": simulation.kind, **(simulation.result or {})},
                indent=1,
            )
            response = HttpResponse(body, content_type="application/json")
        else:
            rows = simulation_rows(simulation)
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["time_hours"])
            writer.writeheader()
            writer.writerows(rows)
            response = HttpResponse(out.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
        return response


# --- The spatial mixer -------------------------------------------------------------------------


class MixerCatalogApi(APIView):
    """Materials and recipes with their parameter ranges and defaults."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(mixer.catalog())


class MixerOutcomeApi(APIView):
    """The simulated outcome of a material, recipe and parameters (rpm, temperature_c, force_n,
    duration_min, batch_kg), at once; missing parameters take the recipe's defaults."""

    class InputSerializer(serializers.Serializer[None]):
        material = serializers.CharField(max_length=40)
        recipe = serializers.CharField(max_length=40)
        params = serializers.DictField(required=False, default=dict)

    @extend_schema(request=InputSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(recipe_outcome(**data.validated_data))


class RecipeSerializer(serializers.ModelSerializer[MixRecipe]):
    author = serializers.CharField(source="author.email", default=None, read_only=True)

    class Meta:
        model = MixRecipe
        fields = [
            "id",
            "name",
            "version",
            "organization",
            "material",
            "recipe",
            "params",
            "outcome",
            "message",
            "twin",
            "author",
            "created_at",
        ]


class RecipeFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = MixRecipe
        fields = ["name", "material", "recipe", "twin", "organization"]


class RecipeListApi(ListAPIView[MixRecipe]):
    """Mixing recipes of your organizations, every version (filters: name, material, recipe,
    twin, search), or save one: saving under an existing name makes its next version."""

    request: AuthenticatedRequest
    serializer_class = RecipeSerializer
    filterset_class = RecipeFilter

    class InputSerializer(serializers.Serializer[None]):
        name = serializers.CharField(max_length=120)
        material = serializers.CharField(max_length=40)
        recipe = serializers.CharField(max_length=40)
        params = serializers.DictField(required=False, default=dict)
        message = serializers.CharField(max_length=300, required=False, allow_blank=True)
        twin = serializers.IntegerField(required=False)
        organization = serializers.PrimaryKeyRelatedField(
            queryset=Organization.objects.all(), required=False
        )

    def get_queryset(self) -> QuerySet[MixRecipe]:
        if getattr(self, "swagger_fake_view", False):
            return MixRecipe.objects.none()
        return recipe_list(user=self.request.user)

    @extend_schema(request=InputSerializer, responses={201: RecipeSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        twin: DigitalTwin | None = None
        if "twin" in fields:
            twin = twin_get_for_user(user=request.user, pk=fields.pop("twin"))
        recipe = recipe_save(by=request.user, twin=twin, **fields)
        return Response(RecipeSerializer(recipe).data, status=status.HTTP_201_CREATED)


class RecipeDetailApi(APIView):
    @extend_schema(responses={200: RecipeSerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        recipe = recipe_list(user=request.user).filter(pk=pk).first()
        if recipe is None:
            raise Http404
        return Response(RecipeSerializer(recipe).data)
