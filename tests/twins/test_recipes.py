"""The spatial mixer over the API: outcomes at once with per-field errors, and recipes saved
under a name as consecutive versions, seen only within the organization."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.twins.models import MixRecipe
from apps.twins.services import recipe_save, twin_create
from tests.fixtures.studio import Studio

pytestmark = pytest.mark.django_db

CRYO = {"rpm": 1500, "temperature_c": -150, "force_n": 80, "duration_min": 10, "batch_kg": 0.02}


def test_outcome_at_once_and_its_errors(studio: Studio, as_user):
    designer = as_user(studio.designer)
    catalog = designer.get("/api/v1/twins/mixer/catalog/").json()
    assert {"PLA", "aluminium_6061"} <= set(catalog["materials"])
    assert "cryo_mill" in catalog["recipes"]
    cold = designer.post(
        "/api/v1/twins/mixer/outcome/",
        {"material": "PLA", "recipe": "cryo_mill", "params": CRYO},
        format="json",
    )
    assert cold.status_code == 200, cold.json()
    warm = designer.post(
        "/api/v1/twins/mixer/outcome/",
        {"material": "PLA", "recipe": "cryo_mill", "params": {**CRYO, "temperature_c": 20}},
        format="json",
    )
    assert cold.json()["regime"] == "brittle"
    assert cold.json()["particle_size_um"] < warm.json()["particle_size_um"]
    assert cold.json()["ln2_kg"] > 0 == warm.json()["ln2_kg"]

    bad = designer.post(
        "/api/v1/twins/mixer/outcome/",
        {"material": "PLA", "recipe": "cryo_mill", "params": {"rpm": -5, "speed": 3}},
        format="json",
    )
    assert bad.status_code == 400
    details = bad.json()["error"]["details"]
    assert "300 to 1800" in details["params.rpm"][0]
    assert "not a parameter" in details["params.speed"][0]
    unknown = designer.post(
        "/api/v1/twins/mixer/outcome/", {"material": "cheese", "recipe": "blender"}, format="json"
    )
    assert set(unknown.json()["error"]["details"]) == {"material", "recipe"}
    assert as_user(studio.viewer).get("/api/v1/twins/mixer/catalog/").status_code == 200
    assert APIClient().get("/api/v1/twins/mixer/catalog/").status_code == 401


def test_saving_a_name_again_makes_its_next_version(studio: Studio, as_user):
    session = twin_create(by=studio.designer, name="Cryo session", twin_type="mixer")
    designer = as_user(studio.designer)
    saved = []
    for temperature in (-150, -180):
        response = designer.post(
            "/api/v1/twins/recipes/",
            {
                "name": " Fine PLA ",
                "material": "PLA",
                "recipe": "cryo_mill",
                "params": {**CRYO, "temperature_c": temperature},
                "twin": session.pk,
                "message": f"at {temperature} C",
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        saved.append(response.json())
    assert [(r["name"], r["version"]) for r in saved] == [("Fine PLA", 1), ("Fine PLA", 2)]
    assert saved[1]["params"]["temperature_c"] == -180
    assert saved[1]["outcome"]["particle_size_um"] > 0
    assert saved[0]["organization"] == studio.design.pk

    listed = designer.get("/api/v1/twins/recipes/?name=Fine PLA").json()
    assert [r["version"] for r in listed["results"]] == [2, 1]
    colleague = as_user(studio.colleague)
    assert colleague.get(f"/api/v1/twins/recipes/{saved[0]['id']}/").status_code == 200
    outsider = as_user(studio.outsider)
    assert outsider.get("/api/v1/twins/recipes/").json()["count"] == 0
    assert outsider.get(f"/api/v1/twins/recipes/{saved[0]['id']}/").status_code == 404
    # an outsider cannot save into a session they cannot see
    sneaky = outsider.post(
        "/api/v1/twins/recipes/",
        {"name": "x", "material": "PLA", "recipe": "cryo_mill", "twin": session.pk},
        format="json",
    )
    assert sneaky.status_code == 404
    viewer = as_user(studio.viewer)
    refused = viewer.post(
        "/api/v1/twins/recipes/",
        {"name": "x", "material": "PLA", "recipe": "cryo_mill"},
        format="json",
    )
    assert refused.status_code == 403
    invalid = designer.post(
        "/api/v1/twins/recipes/",
        {"name": "x", "material": "PLA", "recipe": "cryo_mill", "params": {"rpm": "fast"}},
        format="json",
    )
    assert invalid.status_code == 400 and "params.rpm" in invalid.json()["error"]["details"]
    assert MixRecipe.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_saves_of_one_name_get_consecutive_versions(studio: Studio):
    """Six threads with their own connections save the same name at once."""
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def saver(i: int) -> None:
        try:
            barrier.wait()
            recipe_save(
                by=studio.designer,
                name="Race",
                material="PLA",
                recipe="cryo_mill",
                params={**CRYO, "duration_min": 10 + i},
            )
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=saver, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    versions = sorted(MixRecipe.objects.filter(name="Race").values_list("version", flat=True))
    assert versions == [1, 2, 3, 4, 5, 6]
