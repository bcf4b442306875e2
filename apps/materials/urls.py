from django.urls import path

from apps.materials import views

app_name = "materials"

urlpatterns = [
    path("materials/", views.inventory_view, name="inventory"),
    path("materials/inventory/new/", views.inventory_create_view, name="inventory-create"),
    path("materials/inventory/<int:pk>/", views.inventory_detail_view, name="inventory-detail"),
    path(
        "materials/inventory/<int:pk>/adjust/",
        views.inventory_adjust_view,
        name="inventory-adjust",
    ),
    path(
        "materials/inventory/<int:pk>/restock/",
        views.inventory_restock_view,
        name="inventory-restock",
    ),
    path(
        "materials/inventory/<int:pk>/reorder/",
        views.inventory_reorder_view,
        name="inventory-reorder",
    ),
    path(
        "materials/inventory/<int:pk>/settings/",
        views.inventory_settings_view,
        name="inventory-settings",
    ),
    path("materials/spools/", views.spools_view, name="spools"),
    path("materials/spools/<int:pk>/load/", views.spool_load_view, name="spool-load"),
    path("materials/spools/<int:pk>/unload/", views.spool_unload_view, name="spool-unload"),
    path("materials/orders/", views.orders_view, name="orders"),
    path(
        "materials/orders/<int:pk>/<str:action>/",
        views.order_action_view,
        name="order-action",
    ),
    path("materials/catalog/", views.catalog_view, name="catalog"),
    path("materials/catalog/new/", views.catalog_create_view, name="catalog-create"),
    path("materials/catalog/<int:pk>/", views.material_edit_view, name="material-edit"),
]
