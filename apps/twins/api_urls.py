from django.urls import path

from apps.twins import api, api_simulation

urlpatterns = [
    path("twins/", api.TwinListApi.as_view(), name="twin-list"),
    path("twins/<int:pk>/", api.TwinDetailApi.as_view(), name="twin-detail"),
    path("twins/<int:pk>/edits/", api.EditApi.as_view(), name="twin-edit"),
    path("twins/<int:pk>/versions/", api.VersionListApi.as_view(), name="twin-versions"),
    path(
        "twins/<int:pk>/versions/<int:number>/",
        api.VersionDetailApi.as_view(),
        name="twin-version",
    ),
    path("twins/<int:pk>/diff/", api.DiffApi.as_view(), name="twin-diff"),
    path("twins/<int:pk>/revert/", api.RevertApi.as_view(), name="twin-revert"),
    path("twins/<int:pk>/share/", api.ShareApi.as_view(), name="twin-share"),
    path("twins/<int:pk>/locks/", api.LockListApi.as_view(), name="twin-locks"),
    path(
        "twins/<int:pk>/locks/<int:lock>/heartbeat/",
        api.LockHeartbeatApi.as_view(),
        name="twin-lock-heartbeat",
    ),
    path(
        "twins/<int:pk>/locks/<int:lock>/release/",
        api.LockReleaseApi.as_view(),
        name="twin-lock-release",
    ),
    path("twins/<int:pk>/model/", api.ModelApi.as_view(), name="twin-model"),
    path(
        "twins/<int:pk>/simulations/",
        api_simulation.SimulationListApi.as_view(),
        name="twin-simulations",
    ),
    path(
        "twins/<int:pk>/simulations/<int:sid>/",
        api_simulation.SimulationDetailApi.as_view(),
        name="twin-simulation",
    ),
    path(
        "twins/<int:pk>/simulations/<int:sid>/export.<str:fmt>",
        api_simulation.SimulationExportApi.as_view(),
        name="twin-simulation-export",
    ),
    path("twins/mixer/catalog/", api_simulation.MixerCatalogApi.as_view(), name="mixer-catalog"),
    path("twins/mixer/outcome/", api_simulation.MixerOutcomeApi.as_view(), name="mixer-outcome"),
    path("twins/recipes/", api_simulation.RecipeListApi.as_view(), name="mix-recipes"),
    path("twins/recipes/<int:pk>/", api_simulation.RecipeDetailApi.as_view(), name="mix-recipe"),
]
