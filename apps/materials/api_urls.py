from django.urls import path

from apps.materials import api

urlpatterns = [
    path("materials/", api.MaterialListApi.as_view(), name="material-list"),
    path("materials/<int:pk>/", api.MaterialDetailApi.as_view(), name="material-detail"),
    path("materials/inventory/", api.InventoryListApi.as_view(), name="materials-inventory-list"),
    path("materials/spools/", api.SpoolListApi.as_view(), name="materials-spool-list"),
    path(
        "materials/spools/<int:pk>/load/", api.SpoolLoadApi.as_view(), name="materials-spool-load"
    ),
    path(
        "materials/spools/<int:pk>/unload/",
        api.SpoolUnloadApi.as_view(),
        name="materials-spool-unload",
    ),
    path(
        "materials/inventory/<int:pk>/",
        api.InventoryDetailApi.as_view(),
        name="materials-inventory-detail",
    ),
    path(
        "materials/inventory/<int:pk>/adjust/",
        api.InventoryAdjustApi.as_view(),
        name="materials-inventory-adjust",
    ),
    path(
        "materials/inventory/<int:pk>/restock/",
        api.InventoryRestockApi.as_view(),
        name="materials-inventory-restock",
    ),
    path(
        "materials/inventory/<int:pk>/reorder/",
        api.InventoryReorderApi.as_view(),
        name="materials-inventory-reorder",
    ),
    path(
        "materials/inventory/<int:pk>/movements/",
        api.InventoryMovementsApi.as_view(),
        name="materials-inventory-movements",
    ),
    path(
        "materials/purchase-orders/", api.PurchaseOrderListApi.as_view(), name="materials-po-list"
    ),
    path(
        "materials/purchase-orders/<int:pk>/",
        api.PurchaseOrderDetailApi.as_view(),
        name="materials-po-detail",
    ),
    path(
        "materials/purchase-orders/<int:pk>/send/",
        api.PurchaseOrderSendApi.as_view(),
        name="materials-po-send",
    ),
    path(
        "materials/purchase-orders/<int:pk>/receive/",
        api.PurchaseOrderReceiveApi.as_view(),
        name="materials-po-receive",
    ),
    path(
        "materials/purchase-orders/<int:pk>/cancel/",
        api.PurchaseOrderCancelApi.as_view(),
        name="materials-po-cancel",
    ),
    path("materials/usage/", api.UsageListApi.as_view(), name="materials-usage-list"),
]
