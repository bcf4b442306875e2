from django.urls import path

from apps.twins import views

app_name = "twins"

urlpatterns = [
    path("twins/", views.twin_list_view, name="list"),
    path("twins/new/", views.twin_create_view, name="create"),
    path("twins/<int:pk>/", views.twin_detail_view, name="detail"),
    path("twins/<int:pk>/diff/", views.twin_diff_view, name="diff"),
    path("twins/<int:pk>/revert/", views.twin_revert_view, name="revert"),
    path("twins/<int:pk>/share/", views.twin_share_view, name="share"),
    path("twins/<int:pk>/model/", views.twin_model_view, name="model"),
    path("twins/<int:pk>/simulate/", views.twin_simulate_view, name="simulate"),
    path("twins/<int:pk>/simulations/<int:sid>/", views.twin_simulation_view, name="simulation"),
    path("twins/<int:pk>/mixer/", views.twin_mixer_view, name="mixer"),
]
