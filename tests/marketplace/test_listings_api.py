"""The listings API: browse with filters and pagination, the one error format for bad filters
and bad content, each kind created over HTTP, 404 for what the caller can't see and 403 for
what they see but may not change, versions, images and a seller's figures."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.jobs.services import template_create
from apps.marketplace.models import Listing
from tests.fixtures.market import Market, make_listing, paid_purchase
from tests.marketplace.factories import PART, PLAYBOOK_CONTENT

pytestmark = pytest.mark.django_db
URL = "/api/v1/market/listings/"


def png_file(name: str = "p.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 120, 80)).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_browse_paginates_with_every_field(market: Market, as_user):
    for n in range(3):
        make_listing(market.forge, market.vendor, title=f"Extra {n}", price="1.00")
    make_listing(market.forge, market.vendor, title="Hidden draft", status="draft")
    paid_purchase(market.playbook, market.designer)
    client = as_user(market.designer)

    first = client.get(URL, {"page_size": 4, "sort": "title"}).json()
    assert (first["count"], first["page"], first["pages"]) == (6, 1, 2)
    assert first["next"].endswith("page=2&page_size=4&sort=title") and first["previous"] is None
    second = client.get(first["next"]).json()
    titles = [r["title"] for r in first["results"] + second["results"]]
    assert titles == sorted(titles) and "Hidden draft" not in titles

    recipe = next(r for r in first["results"] + second["results"] if r["title"] == "PLA recipe")
    assert recipe["price"] == "25.00" and recipe["currency"] == "USD"
    assert recipe["price_unit"] == "per licence" and recipe["kind"] == "playbook"
    assert recipe["seller"] == {"id": market.forge.pk, "name": "Forge"}
    assert recipe["owned"] is True
    assert recipe["latest_version"]["number"] == 1
    assert recipe["latest_version"]["content"]["steps"][0]["title"] == "Dry the filament"
    assert recipe["images"] == [] and recipe["node_kind"] is None
    hours = client.get(URL, {"kind": "capacity"}).json()["results"]
    assert [(r["title"], r["node_kind"], r["min_hours"], r["max_hours"]) for r in hours] == [
        ("FDM hours", "fdm_printer", 1, 100)
    ]
    assert hours[0]["price_unit"] == "per hour" and hours[0]["owned"] is False


def test_browse_query_count_does_not_grow_with_rows(
    market: Market, as_user, django_assert_num_queries
):
    for n in range(10):
        make_listing(market.forge, market.vendor, title=f"Extra {n}")
    client = as_user(market.designer)
    # user (JWT), count, rows, facets, cover image, images, latest versions, owned
    with django_assert_num_queries(8):
        assert client.get(URL).json()["count"] == 13


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "bogus"}, "kind"),
        ({"sort": "cheapest"}, "sort"),
        ({"price_min": "abc"}, "price_min"),
        ({"price_min": "-1"}, "price_min"),
        ({"price_min": "20", "price_max": "10"}, "price_max"),
        ({"rating_min": "7"}, "rating_min"),
        ({"seller": "x"}, "seller"),
    ],
)
def test_bad_browse_filters_are_400_naming_the_field(market: Market, as_user, params, field):
    response = as_user(market.viewer).get(URL, params)
    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "invalid" and list(body["details"]) == [field]


def test_filters_over_the_api(market: Market, as_user):
    client = as_user(market.viewer)
    assert [r["title"] for r in client.get(URL, {"q": "recipe"}).json()["results"]] == [
        "PLA recipe"
    ]
    assert {r["title"] for r in client.get(URL, {"price_max": "12.50"}).json()["results"]} == {
        "Drone arm",
        "FDM hours",
    }
    euro = make_listing(market.forge, market.vendor, price="5.00", title="Euro kit")
    Listing.objects.filter(pk=euro.pk).update(currency="EUR")
    in_euro = client.get(URL, {"price_max": "12.50", "currency": "EUR"}).json()["results"]
    assert [r["title"] for r in in_euro] == ["Euro kit"]
    bad = client.get(URL, {"currency": "XYZ"})
    assert bad.status_code == 400 and list(error(bad)["details"]) == ["currency"]
    other = make_listing(market.other, market.designer2, title="Elsewhere")
    found = client.get(URL, {"seller": market.other.pk}).json()["results"]
    assert [r["id"] for r in found] == [other.pk]


def test_each_kind_is_created_over_http(market: Market, as_user):
    designer = as_user(market.designer)
    template = template_create(by=market.designer, name="Kit", parts=[PART])
    made = designer.post(
        URL,
        {"kind": "template", "title": "Kit", "price": "9.50", "template": template.pk},
        format="json",
    )
    assert made.status_code == 201, made.json()
    assert made.json()["status"] == "draft" and made.json()["materials"] == ["pla"]

    recipe = designer.post(
        URL,
        {
            "kind": "playbook",
            "title": "Recipe",
            "price": "3",
            "tags": ["PLA", "Tips"],
            "content": PLAYBOOK_CONTENT,
        },
        format="json",
    )
    assert recipe.status_code == 201, recipe.json()
    assert recipe.json()["tags"] == ["pla", "tips"] and recipe.json()["price"] == "3.00"

    hours = as_user(market.vendor).post(
        URL,
        {
            "kind": "capacity",
            "title": "Mill time",
            "price": "40.00",
            "node_kind": "cnc_mill",
            "min_hours": 2,
            "max_hours": 8,
        },
        format="json",
    )
    assert hours.status_code == 201, hours.json()
    assert hours.json()["licence"] == "service" and hours.json()["min_hours"] == 2


def test_a_vendor_lists_a_template_by_giving_its_parts(market: Market, as_user):
    vendor = as_user(market.vendor)
    content = {
        "parameters": {"scale": {"min": 0.5, "max": 3, "default": 1}},
        "parts": [PART, {**PART, "name": "Lid", "material": "PETG", "size_z_mm": 5}],
    }
    made = vendor.post(
        URL,
        {"kind": "template", "title": "Box kit", "price": "7.00", "content": content},
        format="json",
    )
    assert made.status_code == 201, made.json()
    body = made.json()
    assert sorted(body["materials"]) == ["petg", "pla"] and body["status"] == "draft"
    assert [p["name"] for p in body["latest_version"]["content"]["parts"]] == ["Bracket", "Lid"]
    bad = vendor.post(
        URL,
        {
            "kind": "template",
            "title": "Box kit 2",
            "price": "7.00",
            "content": {"parts": [PART, {**PART, "process": ""}, {**PART, "quantity": 0}]},
        },
        format="json",
    )
    assert bad.status_code == 400
    assert error(bad)["details"] == {"parts[1].process": ["Required."]}
    zero = vendor.post(
        URL,
        {
            "kind": "template",
            "title": "Box kit 3",
            "price": "7.00",
            "content": {"parts": [PART, {**PART, "quantity": 0}]},
        },
        format="json",
    )
    assert error(zero)["details"] == {
        "parts[1]": ["quantity: Ensure this value is greater than or equal to 1."]
    }
    neither = vendor.post(URL, {"kind": "template", "title": "Kit", "price": "7"}, format="json")
    assert list(error(neither)["details"]) == ["template"]
    assert list(
        Listing.objects.filter(title__startswith="Box kit").values_list("title", flat=True)
    ) == ["Box kit"]


def test_create_errors_come_in_the_one_format(market: Market, as_user):
    designer = as_user(market.designer)
    bad_step = {"steps": [{"title": "ok"}, {"title": "", "settings": {"x": [1]}}]}
    response = designer.post(
        URL, {"kind": "playbook", "title": "R", "price": "0.40", "content": bad_step}, format="json"
    )
    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "invalid"
    assert body["details"] == {
        "price": ["At least 0.50."],
        "steps[1].title": ["Give the step a title."],
        "steps[1].settings.x": ["A number or a short text."],
    }
    capacity = designer.post(
        URL,
        {"kind": "capacity", "title": "H", "price": "5", "node_kind": "fdm_printer"},
        format="json",
    )
    assert error(capacity)["details"] == {"kind": ["Designers sell templates and playbooks only."]}
    foreign = designer.post(
        URL,
        {
            "kind": "playbook",
            "title": "R",
            "price": "5",
            "content": PLAYBOOK_CONTENT,
            "organization": market.forge.pk,
        },
        format="json",
    )
    assert error(foreign)["details"] == {
        "organization": ["You are not a member of that organization."]
    }
    viewer = as_user(market.viewer).post(
        URL, {"kind": "playbook", "title": "R", "price": "5", "content": PLAYBOOK_CONTENT}
    )
    assert viewer.status_code == 403 and error(viewer)["code"] == "permission_denied"
    assert not Listing.objects.filter(title="R").exists()


def test_mine_lists_every_status_of_the_callers_organizations(market: Market, as_user):
    draft = make_listing(market.forge, market.vendor, status="draft", title="Draft")
    make_listing(market.other, market.designer2, title="Not Forge's")
    vendor = as_user(market.vendor)
    mine = vendor.get(f"{URL}mine/").json()
    assert mine["count"] == 4 and "Not Forge's" not in [r["title"] for r in mine["results"]]
    drafts = vendor.get(f"{URL}mine/", {"status": "draft"}).json()["results"]
    assert [r["id"] for r in drafts] == [draft.pk]
    assert error(vendor.get(f"{URL}mine/", {"status": "gone"}))["details"] == {
        "status": ['"gone" is not a valid choice.']
    }
    assert as_user(market.admin).get(f"{URL}mine/").json()["count"] == 5
    viewer = as_user(market.viewer).get(f"{URL}mine/")
    assert viewer.status_code == 403


def test_drafts_are_404_to_others_and_changes_403_to_non_sellers(market: Market, as_user):
    draft = make_listing(market.forge, market.vendor, status="draft")
    for user in ("rival", "designer"):
        for method, path in (
            ("get", ""),
            ("patch", ""),
            ("post", "publish/"),
            ("post", "retire/"),
            ("get", "versions/"),
        ):
            response = getattr(as_user(market.user(user)), method)(f"{URL}{draft.pk}/{path}", {})
            assert response.status_code == 404, (user, method, path)
            assert error(response)["code"] == "not_found"
    published = market.template
    for method, path, body in (
        ("patch", "", {"price": "1.00"}),
        ("post", "retire/", {}),
        ("post", "versions/", {"changelog": "mine now"}),
    ):
        response = getattr(as_user(market.rival), method)(
            f"{URL}{published.pk}/{path}", body, format="json"
        )
        assert response.status_code == 403 and error(response)["code"] == "permission_denied"
    published.refresh_from_db()
    assert published.price == 10 and published.status == "published"
    assert as_user(market.designer).get(f"{URL}{published.pk}/").status_code == 200


def test_sellers_edit_publish_version_and_retire_and_admins_moderate(market: Market, as_user):
    vendor = as_user(market.vendor)
    draft = make_listing(
        market.forge, market.vendor, kind="playbook", status="draft", title="Recipe"
    )
    changed = vendor.patch(
        f"{URL}{draft.pk}/", {"price": "7.25", "tags": ["Fast"]}, format="json"
    ).json()
    assert changed["price"] == "7.25" and changed["tags"] == ["fast"]
    rewritten = vendor.post(
        f"{URL}{draft.pk}/versions/", {"content": PLAYBOOK_CONTENT}, format="json"
    )
    assert rewritten.status_code == 201 and rewritten.json()["number"] == 1
    published = vendor.post(f"{URL}{draft.pk}/publish/").json()
    assert published["status"] == "published" and published["published_at"]
    again = vendor.post(f"{URL}{draft.pk}/publish/")
    assert (
        again.status_code == 400 and "Only drafts" in error(again)["details"]["non_field_errors"][0]
    )
    missing = vendor.post(
        f"{URL}{draft.pk}/versions/", {"content": PLAYBOOK_CONTENT}, format="json"
    )
    assert list(error(missing)["details"]) == ["changelog"]
    v2 = vendor.post(
        f"{URL}{draft.pk}/versions/",
        {"content": PLAYBOOK_CONTENT, "changelog": "Clearer checks"},
        format="json",
    )
    assert v2.json()["number"] == 2
    versions = vendor.get(f"{URL}{draft.pk}/versions/").json()
    assert [v["number"] for v in versions["results"]] == [2, 1]
    assert vendor.get(f"{URL}{draft.pk}/").json()["latest_version"]["changelog"] == "Clearer checks"

    theirs = make_listing(market.other, market.designer2)
    retired = as_user(market.admin).post(
        f"{URL}{theirs.pk}/retire/", {"reason": "counterfeit"}, format="json"
    )
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    edit = as_user(market.designer2).patch(f"{URL}{theirs.pk}/", {"title": "x"}, format="json")
    assert edit.status_code == 400
    assert error(edit)["details"] == {
        "non_field_errors": ["This listing is retired: it can no longer be changed."]
    }


def test_images_upload_and_delete(market: Market, as_user, api):
    listing = market.template
    vendor = as_user(market.vendor)
    added = vendor.post(
        f"{URL}{listing.pk}/images/", {"image": png_file(), "alt": "Arm"}, format="multipart"
    )
    assert added.status_code == 201, added.json()
    image = added.json()
    assert (image["width"], image["height"], image["alt"]) == (40, 30, "Arm")
    assert image["url"] == f"http://testserver/api/v1/market/images/{image['id']}/file/"
    picture = as_user(market.designer).get(image["url"])
    assert picture.status_code == 200 and picture["Content-Type"] == "image/png"
    assert b"".join(picture.streaming_content).startswith(b"\x89PNG")
    assert api.get(image["url"]).status_code == 401
    # an image client asking for image/* only gets the picture, and a JSON error if it can't
    only_images = as_user(market.designer).get(image["url"], HTTP_ACCEPT="image/*")
    assert only_images.status_code == 200 and only_images["Content-Type"] == "image/png"
    missing = as_user(market.designer).get(
        "/api/v1/market/images/999999/file/", HTTP_ACCEPT="image/png"
    )
    assert missing.status_code == 404 and error(missing)["code"] == "not_found"
    detail = as_user(market.designer).get(f"{URL}{listing.pk}/").json()
    assert [i["id"] for i in detail["images"]] == [image["id"]]

    text = SimpleUploadedFile("notes.png", b"hello", content_type="image/png")
    refused = vendor.post(f"{URL}{listing.pk}/images/", {"image": text}, format="multipart")
    assert error(refused)["details"] == {"image": ["Not an image: upload a PNG, JPEG or WebP."]}

    second = vendor.post(f"{URL}{listing.pk}/images/", {"image": png_file()}, format="multipart")
    moved = vendor.post(
        f"/api/v1/market/images/{second.json()['id']}/move/", {"position": 1}, format="json"
    )
    assert moved.status_code == 200 and moved.json()["id"] == second.json()["id"]
    detail = as_user(market.designer).get(f"{URL}{listing.pk}/").json()
    assert [i["id"] for i in detail["images"]] == [second.json()["id"], image["id"]]
    bad = vendor.post(f"/api/v1/market/images/{image['id']}/move/", {"position": 0}, format="json")
    assert bad.status_code == 400 and list(error(bad)["details"]) == ["position"]
    far = vendor.post(f"/api/v1/market/images/{image['id']}/move/", {"position": 5}, format="json")
    assert error(far)["details"] == {"position": ["A whole number from 1 to 2."]}
    rival_move = as_user(market.rival).post(
        f"/api/v1/market/images/{image['id']}/move/", {"position": 1}, format="json"
    )
    assert rival_move.status_code == 403
    assert vendor.delete(f"/api/v1/market/images/{second.json()['id']}/").status_code == 204
    rival = as_user(market.rival).delete(f"/api/v1/market/images/{image['id']}/")
    assert rival.status_code == 403
    assert vendor.delete(f"/api/v1/market/images/{image['id']}/").status_code == 204
    assert vendor.delete(f"/api/v1/market/images/{image['id']}/").status_code == 404


def test_a_sellers_public_figures(market: Market, as_user):
    client = as_user(market.designer)
    forge = client.get(f"/api/v1/market/sellers/{market.forge.pk}/").json()
    assert forge["name"] == "Forge" and forge["published_listings"] == 3
    assert forge["sla"]["on_time_rate"] is None and forge["sla"]["parts_done"] == 0
    assert forge["sla"]["days"] == 365
    # an organization that sells nothing is not a seller page (unless it is yours)
    other = market.other
    assert client.get(f"/api/v1/market/sellers/{other.pk}/").status_code == 404
    own = as_user(market.designer2).get(f"/api/v1/market/sellers/{other.pk}/")
    assert own.status_code == 200 and own.json()["published_listings"] == 0


def test_signed_out_callers_are_refused(market: Market, api):
    assert api.get(URL).status_code == 401
    assert api.get(f"{URL}{market.template.pk}/").status_code == 401


def test_the_api_takes_catalogue_processes_and_materials_and_refuses_bad_pairs(
    market: Market, as_user
):
    designer = as_user(market.designer)
    base = {"kind": "playbook", "title": "Guide", "price": "4.00", "content": PLAYBOOK_CONTENT}
    unknown = designer.post(URL, {**base, "materials": ["PLA+"]}, format="json")
    assert unknown.status_code == 400
    assert error(unknown)["details"]["materials"][0].startswith(
        "Unknown material 'PLA+'; use one of the catalogue codes (or their labels): pla, petg"
    )
    bad_pair = designer.post(
        URL, {**base, "processes": ["laser_cutting"], "materials": ["pla"]}, format="json"
    )
    assert bad_pair.status_code == 400
    details = error(bad_pair)["details"]
    assert details["materials"] == [
        "No chosen process works PLA; choose FDM printing too, or leave it out."
    ]
    assert details["processes"] == [
        "Laser cutting works none of the chosen materials: it works Acrylic or Plywood."
    ]
    # labels and old spellings are taken and stored as codes
    made = designer.post(
        URL,
        {**base, "processes": ["FDM printing"], "materials": ["Polylactic acid", "PETG"]},
        format="json",
    )
    assert made.status_code == 201, made.json()
    assert made.json()["materials"] == ["petg", "pla"] and made.json()["processes"] == ["fdm"]
