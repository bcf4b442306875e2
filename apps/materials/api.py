"""The materials API: the catalog (everyone signed in reads, administrators write), stock per
node with its forecast and ledger, purchase orders and their lifecycle, and usage per part.
Stock and orders are scoped by the INVENTORY_MANAGE matrix (apps.materials.selectors): a role
without it gets 403, a node or order outside the caller's scope 404."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.filters import ChoiceIn, UtcIsoDateTimeFilter
from apps.materials import selectors
from apps.materials.models import (
    Inventory,
    Material,
    MaterialUsage,
    PurchaseOrder,
    Spool,
    StockMovement,
)
from apps.materials.services import (
    inventory_adjust,
    inventory_create,
    inventory_restock,
    inventory_update,
    material_create,
    material_update,
    purchase_order_cancel,
    purchase_order_create,
    purchase_order_receive,
    purchase_order_send,
    spool_load,
    spool_unload,
)
from apps.users.models import Organization
from apps.users.types import AuthenticatedRequest


def quantity_field(**kwargs: Any) -> Any:
    """A quantity in a material's unit, to a thousandth."""
    return serializers.DecimalField(max_digits=14, decimal_places=3, **kwargs)


# --- Catalog ----------------------------------------------------------------------------------


class MaterialSerializer(serializers.ModelSerializer[Material]):
    supplier_name = serializers.CharField(
        source="supplier.name", default=None, read_only=True, allow_null=True
    )
    grams_per_unit = serializers.SerializerMethodField()

    class Meta:
        model = Material
        fields = [
            "id",
            "name",
            "category",
            "specs",
            "unit",
            "grams_per_item",
            "grams_per_unit",
            "unit_cost",
            "currency",
            "supplier",
            "supplier_name",
            "lead_time_days",
            "min_order_qty",
            "active",
            "updated_at",
        ]

    def get_grams_per_unit(self, material: Material) -> float | None:
        grams = material.grams_per_unit
        return float(grams) if grams is not None else None


class MaterialInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=60)
    category = serializers.ChoiceField(choices=Material.Category.choices)
    specs = serializers.JSONField(
        help_text="density_g_cm3 (required, above 0), tensile_strength_mpa, youngs_modulus_gpa, "
        "max_service_temp_c"
    )
    unit = serializers.ChoiceField(choices=Material.Unit.choices)
    grams_per_item = serializers.DecimalField(
        max_digits=12, decimal_places=3, required=False, allow_null=True
    )
    unit_cost = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    currency = serializers.CharField(min_length=3, max_length=3, required=False)
    supplier = serializers.IntegerField(required=False, allow_null=True)
    lead_time_days = serializers.IntegerField(min_value=1, max_value=365, required=False)
    min_order_qty = quantity_field(min_value=0, required=False)
    active = serializers.BooleanField(required=False)

    def validate_specs(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("An object of property -> number.")
        return value

    def validate_supplier(self, value: int | None) -> Organization | None:
        if value is None:
            return None
        org = Organization.objects.filter(pk=value).first()
        if org is None:
            raise serializers.ValidationError("No such organization.")
        return org


class MaterialFilter(django_filters.FilterSet):
    category = ChoiceIn(choices=Material.Category.choices)
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains")
    active = django_filters.BooleanFilter()
    supplier = django_filters.NumberFilter(field_name="supplier_id")

    class Meta:
        model = Material
        fields = ["category", "q", "active", "supplier"]


class MaterialListApi(ListAPIView[Material]):
    """The material catalog (filters: category as a comma list, q in the name, active,
    supplier). POST adds a material (administrators)."""

    serializer_class = MaterialSerializer
    filterset_class = MaterialFilter
    ordering_fields = ["name", "unit_cost", "lead_time_days"]

    def get_queryset(self) -> QuerySet[Material]:
        return selectors.material_list()

    @extend_schema(request=MaterialInputSerializer, responses={201: MaterialSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = MaterialInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        material = material_create(by=request.user, **data.validated_data)
        return Response(MaterialSerializer(material).data, status=status.HTTP_201_CREATED)


class MaterialDetailApi(APIView):
    @extend_schema(responses={200: MaterialSerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        return Response(
            MaterialSerializer(get_object_or_404(selectors.material_list(), pk=pk)).data
        )

    @extend_schema(request=MaterialInputSerializer, responses={200: MaterialSerializer})
    def patch(self, request: AuthenticatedRequest, pk: int) -> Response:
        material = get_object_or_404(selectors.material_list(), pk=pk)
        data = MaterialInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        material = material_update(by=request.user, material=material, **data.validated_data)
        return Response(MaterialSerializer(material).data)


# --- Stock ------------------------------------------------------------------------------------


class ForecastSerializer(serializers.Serializer[Any]):
    mean_daily = serializers.FloatField(help_text="Mean daily usage, in the stock's unit.")
    std_daily = serializers.FloatField()
    days_until_stockout = serializers.FloatField(
        source="days_left", allow_null=True, help_text="None without recent usage."
    )
    history_days = serializers.IntegerField()
    lead_time_days = serializers.IntegerField()
    risk = serializers.CharField(help_text="high (out within the lead time), mid, low, none.")


class OpenOrderSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    status = serializers.CharField()
    quantity = quantity_field()


class InventorySerializer(serializers.ModelSerializer[Inventory]):
    node_name = serializers.CharField(source="node.name", read_only=True)
    material_name = serializers.CharField(source="material.name", read_only=True)
    unit = serializers.CharField(source="material.unit", read_only=True)
    is_low = serializers.BooleanField(read_only=True)
    forecast = serializers.SerializerMethodField()
    open_order = serializers.SerializerMethodField()

    class Meta:
        model = Inventory
        fields = [
            "id",
            "node",
            "node_name",
            "material",
            "material_name",
            "unit",
            "quantity",
            "reorder_point",
            "reorder_quantity",
            "reorder_point_auto",
            "auto_reorder",
            "loaded",
            "is_low",
            "forecast",
            "open_order",
            "last_restock_at",
            "telemetry_at",
            "updated_at",
        ]

    @extend_schema(responses=ForecastSerializer)
    def get_forecast(self, inventory: Inventory) -> dict[str, Any]:
        forecasts = self.context.get("forecasts") or selectors.inventory_forecasts(
            inventories=[inventory]
        )
        return ForecastSerializer(forecasts[inventory.pk]).data

    @extend_schema(responses=OpenOrderSerializer(allow_null=True))
    def get_open_order(self, inventory: Inventory) -> dict[str, Any] | None:
        orders = self.context.get("open_orders")
        if orders is None:
            order = selectors.open_order_for(inventory=inventory)
        else:
            order = orders.get(inventory.pk)
        return OpenOrderSerializer(order).data if order else None


def inventory_data(inventory: Inventory) -> dict[str, Any]:
    return InventorySerializer(inventory).data


class InventoryFilter(django_filters.FilterSet):
    node = django_filters.NumberFilter(field_name="node_id")
    material = django_filters.NumberFilter(field_name="material_id")
    site = django_filters.NumberFilter(field_name="node__site_id")
    low = django_filters.BooleanFilter(
        method="filter_low", label="At or below the reorder point (true) or above it (false)"
    )
    loaded = django_filters.BooleanFilter()

    class Meta:
        model = Inventory
        fields = ["node", "material", "site", "low", "loaded"]

    def filter_low(self, qs: QuerySet[Inventory], name: str, value: bool | None) -> Any:
        if value is None:
            return qs
        return qs.filter(selectors.LOW_STOCK) if value else qs.exclude(selectors.LOW_STOCK)


class SpoolSerializer(serializers.ModelSerializer[Spool]):
    material_name = serializers.CharField(source="material.name", read_only=True)
    node_name = serializers.CharField(
        source="node.name", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = Spool
        fields = [
            "id",
            "vendor",
            "material",
            "material_name",
            "name",
            "colour_hex",
            "remaining_g",
            "node",
            "node_name",
            "spoolman_id",
        ]


class SpoolListApi(ListAPIView[Spool]):
    """The spools of the vendors whose stock you manage: material, colour, grams left and the
    printer each is loaded on (imported from Spoolman: `manage.py spoolman_import`)."""

    request: AuthenticatedRequest

    serializer_class = SpoolSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Spool]:
        if getattr(self, "swagger_fake_view", False):
            return Spool.objects.none()
        return selectors.spool_list(user=self.request.user)


class SpoolLoadApi(APIView):
    """Loads the spool on a printer of its vendor that prints its material. A printer holds one
    spool: the one it held comes off (`replaced`: its id, or null). The scheduler's colour
    matching uses the change at once."""

    class InputSerializer(serializers.Serializer[Any]):
        node = serializers.IntegerField(min_value=1)

    class OutputSerializer(SpoolSerializer):
        replaced = serializers.SerializerMethodField()

        class Meta(SpoolSerializer.Meta):
            fields = [*SpoolSerializer.Meta.fields, "replaced"]

        def get_replaced(self, spool: Spool) -> int | None:
            previous = self.context.get("replaced")
            return previous.pk if previous is not None else None

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        spool = selectors.spool_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        node = selectors.stock_node_get(user=request.user, pk=data.validated_data["node"])
        spool, previous = spool_load(by=request.user, spool=spool, node=node)
        spool = selectors.spool_get_for_user(user=request.user, pk=spool.pk)
        return Response(self.OutputSerializer(spool, context={"replaced": previous}).data)


class SpoolUnloadApi(APIView):
    """Takes the spool off its printer (a spool on none stays as it is)."""

    @extend_schema(request=None, responses={200: SpoolSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        spool = selectors.spool_get_for_user(user=request.user, pk=pk)
        spool_unload(by=request.user, spool=spool)
        spool = selectors.spool_get_for_user(user=request.user, pk=spool.pk)
        return Response(SpoolSerializer(spool).data)


class InventoryListApi(ListAPIView[Inventory]):
    """Stock of the nodes whose stock you manage, with each one's forecast (filters: node,
    material, site, low=true|false, loaded). POST starts keeping stock of a material at a
    node (an opening quantity is recorded as an adjustment)."""

    request: AuthenticatedRequest

    serializer_class = InventorySerializer
    filterset_class = InventoryFilter
    ordering_fields = ["quantity", "updated_at", "last_restock_at"]

    class InputSerializer(serializers.Serializer[Any]):
        node = serializers.IntegerField()
        material = serializers.IntegerField()
        quantity = quantity_field(min_value=0, default=0)
        reorder_point = quantity_field(min_value=0, default=0)
        reorder_quantity = quantity_field(min_value=0, default=0)
        reorder_point_auto = serializers.BooleanField(
            required=False,
            allow_null=True,
            default=None,
            help_text="Recompute the reorder point daily (default: when none is given).",
        )
        auto_reorder = serializers.BooleanField(required=False, default=True)
        loaded = serializers.BooleanField(required=False, default=False)

    def get_queryset(self) -> QuerySet[Inventory]:
        if getattr(self, "swagger_fake_view", False):
            return Inventory.objects.none()
        return selectors.inventory_list(user=self.request.user)

    def list(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        rows = list(self.paginate_queryset(self.filter_queryset(self.get_queryset())) or [])
        context = {
            "forecasts": selectors.inventory_forecasts(inventories=rows),
            "open_orders": selectors.open_orders_by_inventory(inventories=rows),
        }
        data = InventorySerializer(rows, many=True, context=context).data
        return self.get_paginated_response(data)

    @extend_schema(request=InputSerializer, responses={201: InventorySerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        node = selectors.stock_node_get(user=request.user, pk=values.pop("node"))
        material = Material.objects.filter(pk=values.pop("material")).first()
        if material is None:
            raise serializers.ValidationError({"material": ["No such material."]})
        inventory = inventory_create(by=request.user, node=node, material=material, **values)
        return Response(inventory_data(inventory), status=status.HTTP_201_CREATED)


class InventoryDetailApi(APIView):
    """One stock with its forecast. PATCH changes its reorder figures and switches; a reorder
    point given by hand stops the daily recomputation unless reorder_point_auto is true."""

    class InputSerializer(serializers.Serializer[Any]):
        reorder_point = quantity_field(min_value=0, required=False)
        reorder_quantity = quantity_field(min_value=0, required=False)
        reorder_point_auto = serializers.BooleanField(required=False)
        auto_reorder = serializers.BooleanField(required=False)
        loaded = serializers.BooleanField(required=False)

    @extend_schema(responses={200: InventorySerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        return Response(inventory_data(selectors.inventory_get_for_user(user=request.user, pk=pk)))

    @extend_schema(request=InputSerializer, responses={200: InventorySerializer})
    def patch(self, request: AuthenticatedRequest, pk: int) -> Response:
        inventory = selectors.inventory_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        inventory = inventory_update(by=request.user, inventory=inventory, **data.validated_data)
        return Response(inventory_data(inventory))


class MovementSerializer(serializers.ModelSerializer[StockMovement]):
    by = serializers.CharField(source="by.email", default=None, read_only=True, allow_null=True)

    class Meta:
        model = StockMovement
        fields = [
            "id",
            "kind",
            "delta",
            "quantity_after",
            "part",
            "purchase_order",
            "by",
            "note",
            "at",
        ]


class InventoryAdjustApi(APIView):
    """A correction by hand: `delta` (+/-) or the counted `quantity` (one of them) and a
    `note` saying why. Returns the stock; 400 when a decrement exceeds it."""

    class InputSerializer(serializers.Serializer[Any]):
        delta = quantity_field(required=False, allow_null=True)
        quantity = quantity_field(min_value=0, required=False, allow_null=True)
        note = serializers.CharField(max_length=300)

    @extend_schema(request=InputSerializer, responses={200: InventorySerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        inventory = selectors.inventory_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        inventory_adjust(by=request.user, inventory=inventory, **data.validated_data)
        inventory.refresh_from_db()
        return Response(inventory_data(inventory))


class InventoryRestockApi(APIView):
    """Material delivered outside a purchase order."""

    class InputSerializer(serializers.Serializer[Any]):
        quantity = quantity_field()
        note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={200: InventorySerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        inventory = selectors.inventory_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        inventory_restock(by=request.user, inventory=inventory, **data.validated_data)
        inventory.refresh_from_db()
        return Response(inventory_data(inventory))


class PurchaseOrderSerializer(serializers.ModelSerializer[PurchaseOrder]):
    node = serializers.IntegerField(source="inventory.node_id", read_only=True)
    node_name = serializers.CharField(source="inventory.node.name", read_only=True)
    material = serializers.IntegerField(source="inventory.material_id", read_only=True)
    material_name = serializers.CharField(source="inventory.material.name", read_only=True)
    unit = serializers.CharField(source="inventory.material.unit", read_only=True)
    supplier_name = serializers.CharField(
        source="supplier.name", default=None, read_only=True, allow_null=True
    )
    created_by = serializers.CharField(
        source="created_by.email", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = PurchaseOrder
        fields = [
            "id",
            "inventory",
            "node",
            "node_name",
            "material",
            "material_name",
            "unit",
            "supplier",
            "supplier_name",
            "quantity",
            "unit_cost",
            "total",
            "currency",
            "status",
            "origin",
            "reason",
            "created_by",
            "created_at",
            "sent_at",
            "expected_at",
            "received_at",
            "received_quantity",
            "cancelled_at",
            "note",
        ]


class QuantityNoteSerializer(serializers.Serializer[Any]):
    """A quantity (the default one when left out) and a note: ordering stock, receiving it."""

    quantity = quantity_field(required=False, allow_null=True)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class InventoryReorderApi(APIView):
    """Order this stock now (a manual draft order): `quantity` or the reorder rule's."""

    InputSerializer = QuantityNoteSerializer

    @extend_schema(request=InputSerializer, responses={201: PurchaseOrderSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        inventory = selectors.inventory_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = purchase_order_create(by=request.user, inventory=inventory, **data.validated_data)
        return Response(PurchaseOrderSerializer(order).data, status=status.HTTP_201_CREATED)


class InventoryMovementsApi(ListAPIView[StockMovement]):
    """The stock's ledger, newest first (filter: kind)."""

    request: AuthenticatedRequest

    serializer_class = MovementSerializer
    filterset_fields = ["kind"]

    def get_queryset(self) -> QuerySet[StockMovement]:
        if getattr(self, "swagger_fake_view", False):
            return StockMovement.objects.none()
        inventory = selectors.inventory_get_for_user(
            user=self.request.user,
            pk=self.kwargs["pk"],
        )
        return selectors.inventory_movements(inventory=inventory)


# --- Orders ------------------------------------------------------------------------------------


class PurchaseOrderFilter(django_filters.FilterSet):
    status = ChoiceIn(choices=PurchaseOrder.Status.choices)
    node = django_filters.NumberFilter(field_name="inventory__node_id")
    material = django_filters.NumberFilter(field_name="inventory__material_id")
    origin = django_filters.ChoiceFilter(choices=PurchaseOrder.Origin.choices)
    supplier = django_filters.NumberFilter(field_name="supplier_id")

    class Meta:
        model = PurchaseOrder
        fields = ["status", "node", "material", "origin", "supplier"]


class PurchaseOrderListApi(ListAPIView[PurchaseOrder]):
    """Purchase orders of the stock you manage, newest first (filters: status as a comma
    list, node, material, origin, supplier). POST drafts a manual order of a stock."""

    request: AuthenticatedRequest

    serializer_class = PurchaseOrderSerializer
    filterset_class = PurchaseOrderFilter
    ordering_fields = ["created_at", "total", "status"]

    class InputSerializer(serializers.Serializer[Any]):
        inventory = serializers.IntegerField()
        quantity = quantity_field(required=False, allow_null=True)
        note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def get_queryset(self) -> QuerySet[PurchaseOrder]:
        if getattr(self, "swagger_fake_view", False):
            return PurchaseOrder.objects.none()
        return selectors.purchase_order_list(user=self.request.user)

    @extend_schema(request=InputSerializer, responses={201: PurchaseOrderSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        inventory = selectors.inventory_get_for_user(user=request.user, pk=values.pop("inventory"))
        order = purchase_order_create(by=request.user, inventory=inventory, **values)
        return Response(PurchaseOrderSerializer(order).data, status=status.HTTP_201_CREATED)


class PurchaseOrderDetailApi(APIView):
    @extend_schema(responses={200: PurchaseOrderSerializer})
    def get(self, request: AuthenticatedRequest, pk: int) -> Response:
        order = selectors.purchase_order_get_for_user(user=request.user, pk=pk)
        return Response(PurchaseOrderSerializer(order).data)


class PurchaseOrderSendApi(APIView):
    """Draft -> sent; the supplier's people are told (409 from another status)."""

    @extend_schema(request=None, responses={200: PurchaseOrderSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        order = selectors.purchase_order_get_for_user(user=request.user, pk=pk)
        order = purchase_order_send(by=request.user, order=order)
        return Response(PurchaseOrderSerializer(order).data)


class PurchaseOrderReceiveApi(APIView):
    """Sent -> received: `quantity` (the ordered one unless said) goes into stock."""

    InputSerializer = QuantityNoteSerializer

    @extend_schema(request=InputSerializer, responses={200: PurchaseOrderSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        order = selectors.purchase_order_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = purchase_order_receive(by=request.user, order=order, **data.validated_data)
        return Response(PurchaseOrderSerializer(order).data)


class PurchaseOrderCancelApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
        note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={200: PurchaseOrderSerializer})
    def post(self, request: AuthenticatedRequest, pk: int) -> Response:
        order = selectors.purchase_order_get_for_user(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = purchase_order_cancel(by=request.user, order=order, **data.validated_data)
        return Response(PurchaseOrderSerializer(order).data)


# --- Usage -------------------------------------------------------------------------------------


class UsageSerializer(serializers.ModelSerializer[MaterialUsage]):
    part_name = serializers.CharField(source="part.name", read_only=True)
    node_name = serializers.CharField(
        source="node.name", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = MaterialUsage
        fields = [
            "id",
            "part",
            "part_name",
            "job",
            "node",
            "node_name",
            "material",
            "material_name",
            "outcome",
            "used_g",
            "waste_g",
            "source",
            "inventory",
            "stock_note",
            "spool",
            "spool_taken_g",
            "spool_note",
            "at",
        ]


class UsageFilter(django_filters.FilterSet):
    job = django_filters.NumberFilter(field_name="job_id")
    node = django_filters.NumberFilter(field_name="node_id")
    material = django_filters.NumberFilter(field_name="material_id")
    since = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt")
    outcome = django_filters.ChoiceFilter(choices=MaterialUsage.Outcome.choices)

    class Meta:
        model = MaterialUsage
        fields = ["job", "node", "material", "since", "until", "outcome"]


class UsageListApi(ListAPIView[MaterialUsage]):
    """Material used and wasted per finished part, newest first: on the nodes whose stock you
    manage and of the jobs you may view as their owners (filters: job, node, material,
    since/until as ISO 8601 times, outcome)."""

    request: AuthenticatedRequest

    serializer_class = UsageSerializer
    filterset_class = UsageFilter
    ordering_fields = ["at", "used_g", "waste_g"]

    def get_queryset(self) -> QuerySet[MaterialUsage]:
        if getattr(self, "swagger_fake_view", False):
            return MaterialUsage.objects.none()
        return selectors.usage_list(user=self.request.user)
