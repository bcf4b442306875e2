"""Twins over the API: create, edit with versions, concurrent edits transformed or rejected,
history, diff, revert, sharing with users and teams, who may see and edit, 3D models."""

from __future__ import annotations

import threading

import pytest
import trimesh
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from apps.twins.models import DigitalTwin, TwinVersion
from apps.twins.services import twin_edit
from tests.fixtures.studio import PROPERTIES, Studio, twin_of
from tests.jobs.conftest import STL_CUBE_ASCII

pytestmark = pytest.mark.django_db


def edit(client, twin_id, base, *ops, message=""):
    return client.post(
        f"/api/v1/twins/{twin_id}/edits/",
        {"base_version": base, "ops": list(ops), "message": message},
        format="json",
    )


def test_create_and_edit_makes_versions(studio: Studio, as_user):
    designer = as_user(studio.designer)
    created = designer.post(
        "/api/v1/twins/",
        {
            "name": "Mill twin",
            "twin_type": "mill",
            "node": studio.node.pk,
            "properties": {"axes": 3},
            "tags": ["cnc", "lab"],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    twin = created.json()
    assert twin["version"] == 1 and twin["node_name"] == "Mill-01" and twin["can_edit"]
    done = edit(
        designer,
        twin["id"],
        1,
        {"op": "set", "path": "axes", "value": 5},
        {"op": "set", "path": "spindle", "value": {"max_rpm": 24000}},
        message="five axes",
    )
    assert done.status_code == 200, done.json()
    assert done.json()["version"] == 2
    detail = designer.get(f"/api/v1/twins/{twin['id']}/").json()
    assert detail["properties"] == {"axes": 5, "spindle": {"max_rpm": 24000}}
    history = designer.get(f"/api/v1/twins/{twin['id']}/versions/").json()["results"]
    assert [(v["number"], v["message"], v["author"]) for v in history] == [
        (2, "five axes", "designer@f.test"),
        (1, "Created", "designer@f.test"),
    ]
    assert designer.get("/api/v1/twins/?tag=lab").json()["count"] == 1
    assert designer.get("/api/v1/twins/?twin_type=bearing").json()["count"] == 0


def test_an_edit_on_an_old_version_is_transformed_or_rejected(studio: Studio, as_user):
    twin = studio.twin
    designer, colleague = as_user(studio.designer), as_user(studio.colleague)
    from apps.twins.services import twin_share

    twin_share(by=studio.designer, twin=twin, level="edit", user=studio.colleague)
    first = edit(designer, twin.pk, 1, {"op": "insert", "path": "tools/0", "value": "probe"})
    assert first.json()["version"] == 2
    # the colleague still sees version 1 and renames tools/2 ("t3"): it is tools/3 now
    second = edit(colleague, twin.pk, 1, {"op": "set", "path": "tools/2", "value": "T3"})
    assert second.status_code == 200, second.json()
    assert second.json()["ops"][0]["path"] == "tools/3"
    assert twin_of(studio).properties["tools"] == ["probe", "t1", "t2", "T3"]

    edit(designer, twin.pk, 3, {"op": "remove", "path": "spindle/bearing"})
    lost = edit(
        colleague, twin.pk, 3, {"op": "set", "path": "spindle/bearing/preload_n", "value": 5}
    )
    assert lost.status_code == 409
    error = lost.json()["error"]
    assert "spindle/bearing/preload_n' was removed" in error["message"]
    assert error["details"] == {"reason": "conflict", "version": 4}
    batch = edit(
        colleague,
        twin.pk,
        3,
        {"op": "set", "path": "a", "value": 1},
        {"op": "set", "path": "b", "value": 2},
    )
    assert batch.status_code == 409 and batch.json()["error"]["details"]["reason"] == "rebase"


def test_bad_edits_are_refused_precisely(studio: Studio, as_user):
    designer = as_user(studio.designer)
    twin = studio.twin
    bad = edit(designer, twin.pk, 1, {"op": "set", "path": "tools/9", "value": 1})
    assert bad.status_code == 400
    assert "past the end" in bad.json()["error"]["details"]["ops[0]"][0]
    second_bad = edit(
        designer,
        twin.pk,
        1,
        {"op": "set", "path": "x", "value": 1},
        {"op": "remove", "path": "nothing"},
    )
    assert "'nothing' does not exist" in second_bad.json()["error"]["details"]["ops[1]"][0]
    future = edit(designer, twin.pk, 7, {"op": "set", "path": "x", "value": 1})
    assert "from 1 to 1" in future.json()["error"]["details"]["base_version"][0]
    assert twin_of(studio).version == 1  # nothing stored


def test_history_diff_and_revert(studio: Studio, as_user):
    designer = as_user(studio.designer)
    twin = studio.twin
    edit(designer, twin.pk, 1, {"op": "set", "path": "spindle/max_rpm", "value": 42000})
    edit(designer, twin.pk, 2, {"op": "remove", "path": "tools"})
    diff = designer.get(f"/api/v1/twins/{twin.pk}/diff/?from=1&to=3").json()["patch"]
    assert {"op": "replace", "path": "/spindle/max_rpm", "value": 42000} in diff
    assert {"op": "remove", "path": "/tools"} in diff
    assert designer.get(f"/api/v1/twins/{twin.pk}/diff/?from=1&to=9").status_code == 400
    assert designer.get(f"/api/v1/twins/{twin.pk}/diff/?from=x&to=2").status_code == 400

    reverted = designer.post(
        f"/api/v1/twins/{twin.pk}/revert/", {"version": 1}, format="json"
    ).json()
    assert reverted["version"] == 4
    assert twin_of(studio).properties == PROPERTIES
    v4 = designer.get(f"/api/v1/twins/{twin.pk}/versions/4/").json()
    assert v4["message"] == "Revert to version 1" and v4["document"] == PROPERTIES
    # a reconnecting client at version 2 catches up with versions 3 and 4, in order
    after = designer.get(f"/api/v1/twins/{twin.pk}/versions/?after=2").json()["results"]
    assert [v["number"] for v in after] == [3, 4]
    again = designer.post(f"/api/v1/twins/{twin.pk}/revert/", {"version": 4}, format="json")
    assert again.status_code == 409  # nothing to revert


def test_who_may_see_and_edit(studio: Studio, as_user):
    twin = studio.twin
    url = f"/api/v1/twins/{twin.pk}/"
    change = {"op": "set", "path": "x", "value": 1}
    # same organization: sees it; a designer colleague may not edit until it is shared
    assert as_user(studio.colleague).get(url).json()["can_edit"] is False
    assert edit(as_user(studio.colleague), twin.pk, 1, change).status_code == 403
    assert as_user(studio.viewer).get(url).status_code == 200
    for stranger in ("outsider", "rival", "vendor", "operator"):
        assert as_user(studio.user(stranger)).get(url).status_code == 404, stranger
        assert edit(as_user(studio.user(stranger)), twin.pk, 1, change).status_code == 404
    assert as_user(studio.admin).get(url).json()["can_edit"] is True

    owner = as_user(studio.designer)
    share = f"/api/v1/twins/{twin.pk}/share/"
    assert (
        owner.post(share, {"level": "view", "user": "outsider@f.test"}, format="json").status_code
        == 204
    )
    assert as_user(studio.outsider).get(url).json()["can_edit"] is False
    assert (
        owner.post(share, {"level": "edit", "team": studio.other.pk}, format="json").status_code
        == 204
    )
    assert edit(as_user(studio.outsider), twin.pk, 1, change).status_code == 200  # via the team
    # a viewer's role never edits, whatever is shared
    owner.post(share, {"level": "edit", "user": "viewer@f.test"}, format="json")
    assert edit(as_user(studio.viewer), twin.pk, 2, change).status_code == 403
    # only the owner or an admin shares; taking a share back works
    refused = as_user(studio.outsider).post(
        share, {"level": "edit", "user": "rival@f.test"}, format="json"
    )
    assert refused.status_code == 403
    owner.post(share, {"level": "none", "team": studio.other.pk}, format="json")
    owner.post(share, {"level": "none", "user": "outsider@f.test"}, format="json")
    assert as_user(studio.outsider).get(url).status_code == 404
    both = owner.post(share, {"level": "view"}, format="json")
    assert both.status_code == 400
    unknown = owner.post(share, {"level": "view", "user": "nobody@f.test"}, format="json")
    assert "No user" in unknown.json()["error"]["details"]["user"][0]


def test_a_vendor_edits_the_twin_of_its_node(studio: Studio, as_user):
    vendor = as_user(studio.vendor)
    created = vendor.post(
        "/api/v1/twins/",
        {"name": "Mill-01 twin", "twin_type": "mill", "node": studio.node.pk},
        format="json",
    )
    assert created.status_code == 201, created.json()
    twin_id = created.json()["id"]
    assert as_user(studio.rival).get(f"/api/v1/twins/{twin_id}/").status_code == 404
    assert as_user(studio.operator).get(f"/api/v1/twins/{twin_id}/").status_code == 200  # site
    assert (
        as_user(studio.viewer)
        .post("/api/v1/twins/", {"name": "x", "twin_type": "gear"}, format="json")
        .status_code
        == 403
    )


def test_3d_models_are_checked_and_served_to_who_may_see_them(studio: Studio, as_user):
    designer = as_user(studio.designer)
    twin = studio.twin
    url = f"/api/v1/twins/{twin.pk}/model/"
    assert designer.get(url).status_code == 404  # none yet
    glb = trimesh.creation.box(extents=(10, 20, 30)).export(file_type="glb")
    done = designer.post(url, {"file": SimpleUploadedFile("spindle.glb", glb)}, format="multipart")
    assert done.status_code == 200, done.json()
    assert done.json()["model_format"] == "glb" and done.json()["model_url"] == url
    served = designer.get(url)
    assert (
        served["Content-Type"] == "model/gltf-binary" and b"".join(served.streaming_content) == glb
    )
    assert as_user(studio.outsider).get(url).status_code == 404

    fake = designer.post(
        url, {"file": SimpleUploadedFile("x.glb", b"not a model")}, format="multipart"
    )
    assert "not a GLB file" in fake.json()["error"]["details"]["file"][0]
    wrong = designer.post(
        url, {"file": SimpleUploadedFile("x.obj", b"v 0 0 0")}, format="multipart"
    )
    assert ".glb, .gltf or .stl" in wrong.json()["error"]["details"]["file"][0]
    stl = designer.post(
        url, {"file": SimpleUploadedFile("cube.stl", STL_CUBE_ASCII.encode())}, format="multipart"
    )
    assert stl.status_code == 200 and stl.json()["model_format"] == "stl"
    viewer = as_user(studio.viewer)
    refused = viewer.post(
        url, {"file": SimpleUploadedFile("c.stl", STL_CUBE_ASCII.encode())}, format="multipart"
    )
    assert refused.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_latest_version(studio: Studio):
    """Eight threads, each with its own database connection, edit at once: every edit lands
    as its own version, numbers have no gaps and exactly one version is the latest."""
    twin = studio.twin
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            barrier.wait()
            twin_edit(
                by=studio.designer,
                twin=twin,
                base_version=1,
                ops=[{"op": "set", "path": f"w{i}", "value": i}],
            )
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    versions = TwinVersion.objects.filter(twin=twin)
    assert sorted(versions.values_list("number", flat=True)) == list(range(1, 10))
    assert list(versions.filter(is_latest=True).values_list("number", flat=True)) == [9]
    assert DigitalTwin.objects.get(pk=twin.pk).properties == {
        **PROPERTIES,
        **{f"w{i}": i for i in range(8)},
    }
