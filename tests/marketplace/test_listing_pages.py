"""Listing pages: browse with filters kept across pages and a pinned query count, the listing
page of each kind with the seller's figures, and the sellers' pages (create each kind, the
playbook steps editor, edit, versions, publish, retire, images) with 403/404 for the wrong
people."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.http import FileResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from PIL import Image

from apps.core.labels import label_with_unit
from apps.jobs.services import template_create
from apps.marketplace.models import Listing
from apps.marketplace.services.listings import listing_create, listing_publish
from tests.conftest import portal_client
from tests.fixtures.market import Market, make_listing, paid_purchase
from tests.marketplace.factories import PART, PLAYBOOK_CONTENT, ReviewFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def page(user: Any, url: str, **params: Any) -> tuple[int, str]:
    response = portal_client(user).get(url, params)
    return response.status_code, response.content.decode()


def png_file(name: str = "p.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (30, 30), (10, 10, 200)).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


# --- Browse ---------------------------------------------------------------------------------


def test_browse_shows_published_cards(market: Market):
    make_listing(market.forge, market.vendor, status="draft", title="Hidden draft")
    paid_purchase(market.playbook, market.designer)
    status, html = page(market.designer, "/market/")
    assert status == 200
    assert "Drone arm" in html and "PLA recipe" in html and "FDM hours" in html
    assert "Hidden draft" not in html
    assert "12.50 USD" in html and "per hour" in html and "per licence" in html
    assert "Node capacity" in html and "No reviews yet" in html
    assert f'by <a href="/market/sellers/{market.forge.pk}/">Forge</a>' in html
    assert html.count(">Owned<") == 1
    assert "3 listings" in html


def test_browse_names_materials_and_processes_in_words(market: Market):
    listing = listing_create(
        by=market.vendor,
        kind="playbook",
        title="PETG tuning",
        price=5,
        materials=["petg"],
        processes=["fdm"],
        content=PLAYBOOK_CONTENT,
    )
    listing_publish(by=market.vendor, listing=listing)
    _, html = page(market.designer, "/market/")
    # the filters and the card say PETG and FDM printing; the query keeps the codes
    assert '<option value="petg">PETG</option>' in html
    assert '<option value="fdm">FDM printing</option>' in html
    assert "· PETG" in html and "· FDM printing" in html and "· petg" not in html


def test_browse_keeps_the_filters_across_pages(market: Market):
    for n in range(26):
        make_listing(market.other, market.designer2, title=f"Bulk {n:02}", price="2.00")
    status, html = page(market.viewer, "/market/", q="bulk", sort="title")
    assert status == 200 and "26 listings match" in html
    assert html.count('class="health-card listing-card"') == 24
    assert "Bulk 00" in html and "Bulk 24" not in html
    assert 'href="?q=bulk&amp;sort=title&page=2"' in html
    _, second = page(market.viewer, "/market/", q="bulk", sort="title", page=2)
    assert "Bulk 24" in second and "Bulk 25" in second and "Bulk 00" not in second


def test_browse_empty_states_say_what_to_change(market: Market):
    _, html = page(market.viewer, "/market/", q="unobtainium")
    assert "Nothing matches all of these filters" in html and "clear the filters" in html
    status, bad = page(market.viewer, "/market/", price_min="cheap")
    assert status == 200 and "left out of the search" in bad and "Drone arm" in bad
    Listing.objects.update(status="retired")
    _, nothing = page(market.vendor, "/market/")
    assert "Nothing is for sale yet." in nothing and "List the first" in nothing


def test_a_price_search_says_which_currency_it_compares_in(market: Market, settings):
    settings.MARKETPLACE_DEFAULT_CURRENCY = "USD"
    _, html = page(market.viewer, "/market/", price_max="20")
    assert "prices in USD, listings in other currencies left out" in html
    _, euro = page(market.viewer, "/market/", price_max="20", currency="EUR")
    assert "prices in EUR" in euro and 'id="no-results"' in euro
    _, plain = page(market.viewer, "/market/")
    assert "listings in other currencies left out" not in plain


def test_browse_query_count_is_pinned(market: Market, django_assert_num_queries):
    client = portal_client(market.designer)
    client.get("/market/")  # the session warms up
    for extra in (0, 12):
        for n in range(extra):
            make_listing(market.forge, market.vendor, title=f"More {extra}-{n}")
        # session, user, material and process choices, count, rows, facets, cover images,
        # owned; the base page's permissions version (the permissions themselves are cached in
        # the process since the first request, apps/users/tokens.py), membership and unread
        # notifications
        with django_assert_num_queries(12):
            assert client.get("/market/", {"sort": "price"}).status_code == 200


# --- The listing page -----------------------------------------------------------------------


def test_each_kind_shows_its_content_versions_and_seller(market: Market):
    _, template = page(market.designer, f"/market/listings/{market.template.pk}/")
    assert "Bracket" in template and "scale" in template and "40 × 30 × 20" in template
    _, playbook = page(market.designer, f"/market/listings/{market.playbook.pk}/")
    assert "Dry the filament" in playbook and "No stringing" in playbook
    # settings, materials and processes in words, with units; the codes stay in the API
    assert "<dt>Nozzle temperature (°C)</dt><dd>210</dd>" in playbook
    assert "<dt>First-layer speed (mm/s)</dt>" in playbook and "nozzle_c" not in playbook
    assert "For PLA · FDM printing" in playbook
    _, capacity = page(market.designer, f"/market/listings/{market.capacity.pk}/")
    assert "FDM printer at Forge" in capacity and "1 to 100 hours" in capacity
    for html in (template, playbook, capacity):
        assert "About Forge" in html and "No history yet" in html
        assert 'id="versions"' in html and "First version" in html
        assert 'id="buy"' in html and 'id="reviews"' in html
        assert 'id="manage"' not in html
    assert "0 jobs made with it" in template


def test_sellers_and_admins_see_the_manage_buttons(market: Market):
    for user in ("vendor", "admin"):
        _, html = page(market.user(user), f"/market/listings/{market.template.pk}/")
        assert 'id="manage"' in html and "New version" in html and "Retire for good" in html
        assert 'id="publish"' not in html and "Add an image" in html
    _, rival = page(market.rival, f"/market/listings/{market.template.pk}/")
    assert 'id="manage"' not in rival


def test_a_draft_is_404_to_others_and_publishable_by_its_seller(market: Market):
    draft = make_listing(market.forge, market.vendor, status="draft", title="Soon")
    for user in ("designer", "rival", "viewer"):
        assert page(market.user(user), f"/market/listings/{draft.pk}/")[0] == 404
    status, html = page(market.vendor, f"/market/listings/{draft.pk}/")
    assert status == 200 and 'id="publish"' in html and "Edit content" in html

    denied = portal_client(market.rival).post(f"/market/listings/{draft.pk}/publish/")
    assert denied.status_code == 404
    done = portal_client(market.vendor).post(f"/market/listings/{draft.pk}/publish/")
    assert done.status_code == 302 and done["Location"] == f"/market/listings/{draft.pk}/"
    draft.refresh_from_db()
    assert draft.status == "published"


def test_retire_is_for_the_seller_and_admins_only(market: Market):
    listing = market.playbook
    rival = portal_client(market.rival).post(f"/market/listings/{listing.pk}/retire/")
    assert rival.status_code == 403
    listing.refresh_from_db()
    assert listing.status == "published"
    client = portal_client(market.admin)
    response = client.post(
        f"/market/listings/{listing.pk}/retire/", {"reason": "spam"}, follow=True
    )
    assert "is retired" in response.content.decode()
    listing.refresh_from_db()
    assert listing.status == "retired"
    html = response.content.decode()
    assert 'id="retired-note"' in html and "New version" not in html


# --- Selling --------------------------------------------------------------------------------


def test_the_sell_page_lists_the_callers_listings_only(market: Market):
    make_listing(market.forge, market.vendor, status="draft", title="Forge draft")
    make_listing(market.other, market.designer2, title="Other's")
    status, html = page(market.vendor, "/market/sell/")
    assert status == 200
    assert "Forge draft" in html and "Drone arm" in html and "Other's" not in html
    assert "New part template listing" in html
    _, drafts = page(market.vendor, "/market/sell/", status="draft")
    assert "Forge draft" in drafts and "Drone arm" not in drafts
    _, studio = page(market.designer, "/market/sell/")
    assert "Nothing listed yet" in studio
    for user in ("viewer", "operator"):
        assert page(market.user(user), "/market/sell/")[0] == 403
        assert page(market.user(user), "/market/sell/new/", kind="playbook")[0] == 403


def test_a_template_listing_is_created_from_the_form(market: Market):
    template = template_create(by=market.designer, name="Bracket set", parts=[PART])
    status, html = page(market.designer, "/market/sell/new/")
    assert status == 200 and "What do you want to sell?" in html
    status, form = page(market.designer, "/market/sell/new/", kind="template")
    assert status == 200 and "Bracket set" in form and "Price per licence" in form
    response = portal_client(market.designer).post(
        "/market/sell/new/",
        {
            "kind": "template",
            "template": template.pk,
            "title": "Bracket set",
            "price": "12.00",
            "currency": "EUR",
            "licence": "commercial",
            "tags": "Bracket, brackets",
        },
    )
    listing = Listing.objects.get(title="Bracket set")
    assert response.status_code == 302 and response["Location"] == f"/market/listings/{listing.pk}/"
    assert (listing.status, listing.currency, listing.licence) == ("draft", "EUR", "commercial")
    assert listing.versions.get().content["parts"][0]["name"] == "Bracket"


PARTS_FORM = {
    "parts-TOTAL_FORMS": "3",
    "parts-INITIAL_FORMS": "0",
    "parts-MIN_NUM_FORMS": "1",
    "parts-MAX_NUM_FORMS": "50",
    # row 0 left blank (its prefilled quantity and complexity do not count)
    "parts-0-quantity": "1",
    "parts-0-complexity": "5",
    "parts-1-name": "Arm",
    "parts-1-material": "PLA",
    "parts-1-process": "fdm",
    "parts-1-size_x_mm": "80",
    "parts-1-size_y_mm": "12",
    "parts-1-size_z_mm": "6",
    "parts-1-quantity": "4",
    "parts-1-complexity": "3",
    "parts-2-name": "Hub",
    "parts-2-material": "PETG",
    "parts-2-process": "fdm",
    "parts-2-size_x_mm": "40",
    "parts-2-size_y_mm": "40",
    "parts-2-quantity": "1",
    "parts-2-complexity": "5",
    "max_scale": "3",
    "max_quantity": "50",
}


def test_a_vendor_describes_a_templates_parts_on_the_form(market: Market):
    """Vendors have no job templates: the form takes the parts; an error lands on the row it
    is about, even with a blank row before it."""
    client = portal_client(market.vendor)
    status, html = page(market.vendor, "/market/sell/new/", kind="template")
    assert status == 200 and 'id="no-templates"' in html and "Part 1" in html
    base = {
        "kind": "template",
        "title": "Drone arm kit",
        "price": "8.00",
        "currency": "USD",
        "licence": "personal",
        **PARTS_FORM,
    }
    more = client.post("/market/sell/new/", {**base, "add_part": "1"})
    assert more.status_code == 200 and "Part 4" in more.content.decode()
    assert 'value="Hub"' in more.content.decode()
    missing_z = client.post("/market/sell/new/", base)
    assert missing_z.status_code == 400
    html = missing_z.content.decode()
    hub = html[html.index("<legend>Part 3</legend>") :]
    assert "A size in mm above 0." in hub[: hub.index("</fieldset>")]
    assert not Listing.objects.filter(title="Drone arm kit").exists()

    done = client.post("/market/sell/new/", {**base, "parts-2-size_z_mm": "10"})
    assert done.status_code == 302, done.content.decode()[:2000]
    listing = Listing.objects.get(title="Drone arm kit")
    content = listing.versions.get().content
    assert listing.template is None and listing.seller == market.forge
    assert [(p["name"], p["quantity"]) for p in content["parts"]] == [("Arm", 4), ("Hub", 1)]
    assert content["parameters"]["scale"] == {"min": 0.5, "max": 3.0, "default": 1.0}
    assert content["parameters"]["quantity"]["max"] == 50
    _, detail = page(market.vendor, f"/market/listings/{listing.pk}/")
    assert "Arm" in detail and "Hub" in detail


def test_a_typed_templates_parts_are_edited_on_the_version_page(market: Market):
    client = portal_client(market.vendor)
    client.post(
        "/market/sell/new/",
        {
            "kind": "template",
            "title": "Kit",
            "price": "8.00",
            "currency": "USD",
            "licence": "personal",
            **PARTS_FORM,
            "parts-2-size_z_mm": "10",
        },
    )
    listing = Listing.objects.get(title="Kit")
    url = f"/market/listings/{listing.pk}/version/"
    status, html = page(market.vendor, url)
    assert status == 200 and 'value="Arm"' in html and 'value="Hub"' in html
    assert 'name="max_scale" value="3.0"' in html
    form = {
        "parts-TOTAL_FORMS": "1",
        "parts-INITIAL_FORMS": "1",
        "parts-MIN_NUM_FORMS": "1",
        "parts-MAX_NUM_FORMS": "50",
        "parts-0-name": "Arm",
        "parts-0-material": "PLA",
        "parts-0-process": "fdm",
        "parts-0-size_x_mm": "90",
        "parts-0-size_y_mm": "12",
        "parts-0-size_z_mm": "6",
        "parts-0-quantity": "4",
        "parts-0-complexity": "3",
        "max_scale": "2",
        "max_quantity": "10",
    }
    saved = client.post(url, form)
    assert saved.status_code == 302
    content = listing.versions.get().content  # a draft's one version, rewritten
    assert [p["size_x_mm"] for p in content["parts"]] == [90.0]
    assert content["parameters"]["quantity"]["max"] == 10
    blank = {**form, "parts-0-name": "", "parts-0-material": "", "parts-0-process": ""}
    blank.update({"parts-0-size_x_mm": "", "parts-0-size_y_mm": "", "parts-0-size_z_mm": ""})
    refused = client.post(url, blank)
    assert refused.status_code == 400 and "At least one part." in refused.content.decode()
    # a listing made from a job template is versioned from it, without the parts editor
    template_listing = listing_from_job_template(market)
    _, html = page(market.designer, f"/market/listings/{template_listing.pk}/version/")
    assert "as they are now" in html and 'id="parts"' not in html


def listing_from_job_template(market: Market) -> Listing:
    template = template_create(by=market.designer, name="Bracket set", parts=[PART])
    portal_client(market.designer).post(
        "/market/sell/new/",
        {
            "kind": "template",
            "template": template.pk,
            "title": "From template",
            "price": "12.00",
            "currency": "EUR",
            "licence": "commercial",
        },
    )
    return Listing.objects.get(title="From template")


def test_the_playbook_steps_editor(market: Market):
    client = portal_client(market.designer)
    base = {
        "kind": "playbook",
        "title": "PETG recipe",
        "price": "6.00",
        "currency": "USD",
        "licence": "organization",
        "materials": ["petg"],
        "processes": ["fdm"],
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "1",
        "steps-MAX_NUM_FORMS": "50",
        "steps-0-title": "Dry",
        "steps-0-settings": "dryer_c = 65\nhours = 4.5\nmode = gentle",
        "steps-0-checks": "Spool weighed\n\nBelow 0.1%",
    }
    more = client.post("/market/sell/new/", {**base, "add_step": "1"})
    html = more.content.decode()
    assert more.status_code == 200 and "Step 2" in html and "dryer_c = 65" in html
    assert not Listing.objects.filter(title="PETG recipe").exists()

    two = {**base, "steps-TOTAL_FORMS": "2", "steps-1-instructions": "Print slowly"}
    refused = client.post("/market/sell/new/", two)
    assert refused.status_code == 400
    assert "Give the step a title." in refused.content.decode()
    bad_settings = client.post("/market/sell/new/", {**base, "steps-0-settings": "no equals"})
    assert "Line 1: write name = value." in bad_settings.content.decode()

    done = client.post("/market/sell/new/", {**two, "steps-1-title": "Print"})
    assert done.status_code == 302
    content = Listing.objects.get(title="PETG recipe").versions.get().content
    assert content["steps"][0]["settings"] == {"dryer_c": 65, "hours": 4.5, "mode": "gentle"}
    assert content["steps"][0]["checks"] == ["Spool weighed", "Below 0.1%"]
    assert [s["title"] for s in content["steps"]] == ["Dry", "Print"]
    assert content["materials"] == ["petg"]


def test_capacity_is_offered_on_the_kinds_a_vendor_has_approved(market: Market):
    status, html = page(market.vendor, "/market/sell/new/", kind="capacity")
    assert status == 200 and 'value="fdm_printer"' in html and 'value="cnc_mill"' in html
    assert 'value="laser_cutter"' not in html
    response = portal_client(market.vendor).post(
        "/market/sell/new/",
        {
            "kind": "capacity",
            "node_kind": "cnc_mill",
            "min_hours": "4",
            "max_hours": "2",
            "title": "Mill time",
            "price": "35.00",
            "currency": "USD",
            "licence": "service",
        },
    )
    assert response.status_code == 400
    assert "At least the minimum hours." in response.content.decode()
    _, designer = page(market.designer, "/market/sell/new/", kind="capacity")
    assert 'id="no-nodes"' in designer


def test_editing_a_listing(market: Market):
    listing = market.template
    url = f"/market/listings/{listing.pk}/edit/"
    assert page(market.rival, url)[0] == 403
    draft = make_listing(market.forge, market.vendor, status="draft")
    assert page(market.rival, f"/market/listings/{draft.pk}/edit/")[0] == 404
    status, html = page(market.vendor, url)
    assert status == 200 and 'value="Drone arm"' in html
    form = {
        "title": "Drone arm v2",
        "price": "11.00",
        "currency": "USD",
        "licence": "organization",
        "tags": "drone",
    }
    bad = portal_client(market.vendor).post(url, {**form, "currency": "XYZ"})
    assert bad.status_code == 400
    saved = portal_client(market.vendor).post(url, form)
    assert saved.status_code == 302
    listing.refresh_from_db()
    assert listing.title == "Drone arm v2" and str(listing.price) == "11.00"
    Listing.objects.filter(pk=listing.pk).update(status="retired")
    retired = portal_client(market.vendor).get(url)
    assert retired.status_code == 302 and retired["Location"] == f"/market/listings/{listing.pk}/"


def test_a_new_version_from_the_page(market: Market):
    listing = market.playbook
    url = f"/market/listings/{listing.pk}/version/"
    status, html = page(market.vendor, url)
    assert status == 200 and "Dry the filament" in html and "Save version 2" in html
    form = {
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "1",
        "steps-MIN_NUM_FORMS": "1",
        "steps-MAX_NUM_FORMS": "50",
        "steps-0-title": "Dry longer",
        "steps-0-settings": "dryer_c = 50",
        "materials": "pla",
        "processes": ["fdm"],
    }
    missing = portal_client(market.vendor).post(url, form)
    assert missing.status_code == 400 and "Say what changed" in missing.content.decode()
    done = portal_client(market.vendor).post(url, {**form, "changelog": "Longer drying"})
    assert done.status_code == 302
    latest = listing.versions.latest("number")
    assert latest.number == 2 and latest.content["steps"][0]["settings"] == {"dryer_c": 50}
    _, detail = page(market.designer, f"/market/listings/{listing.pk}/")
    assert "Longer drying" in detail and "Dry longer" in detail
    assert page(market.rival, url)[0] == 403


def test_images_from_the_page(market: Market, media):
    listing = market.template
    client = portal_client(market.vendor)
    added = client.post(
        f"/market/listings/{listing.pk}/images/", {"image": png_file(), "alt": "Top"}, follow=True
    )
    assert "Image added." in added.content.decode()
    image = listing.images.get()
    _, browse = page(market.viewer, "/market/")
    file_url = f"/market/images/{image.pk}/file/"
    assert f'src="{file_url}"' in browse and 'alt="Top"' in browse
    picture = portal_client(market.viewer).get(file_url)
    assert picture.status_code == 200 and picture["Content-Type"] == "image/png"
    assert isinstance(picture, FileResponse)
    assert b"".join(picture.streaming_content).startswith(b"\x89PNG")
    assert picture["X-Content-Type-Options"] == "nosniff"
    signed_out = Client().get(file_url)
    assert signed_out.status_code == 302 and "/login/" in signed_out["Location"]
    # a draft's pictures stay with its seller
    draft = make_listing(market.forge, market.vendor, status="draft", title="Unseen")
    client.post(f"/market/listings/{draft.pk}/images/", {"image": png_file()})
    hidden = draft.images.get()
    assert portal_client(market.viewer).get(f"/market/images/{hidden.pk}/file/").status_code == 404
    assert client.get(f"/market/images/{hidden.pk}/file/").status_code == 200
    hidden.image.storage.delete(hidden.image.name)  # a file lost on disk is a 404, not a 500
    assert client.get(f"/market/images/{hidden.pk}/file/").status_code == 404
    text = SimpleUploadedFile("x.png", b"not a picture", content_type="image/png")
    refused = client.post(f"/market/listings/{listing.pk}/images/", {"image": text}, follow=True)
    assert "Not an image: upload a PNG, JPEG or WebP." in refused.content.decode()
    second = client.post(f"/market/listings/{listing.pk}/images/", {"image": png_file()})
    assert second.status_code == 302
    later = listing.images.order_by("position").last()
    _, html = page(market.vendor, f"/market/listings/{listing.pk}/")
    assert "Make cover" in html and f"/market/images/{later.pk}/move/" in html
    _, buyer_view = page(market.designer, f"/market/listings/{listing.pk}/")
    assert "Make cover" not in buyer_view and "/move/" not in buyer_view
    cover = client.post(f"/market/images/{later.pk}/move/", {"position": "1"}, follow=True)
    assert "Cover image set." in cover.content.decode()
    assert listing.images.order_by("position").first() == later
    bad = client.post(f"/market/images/{later.pk}/move/", {"position": "9"}, follow=True)
    assert "Image not moved: position: A whole number from 1 to 2." in bad.content.decode()
    rival_move = portal_client(market.rival).post(
        f"/market/images/{image.pk}/move/", {"position": "1"}
    )
    assert rival_move.status_code == 403
    later.delete()
    rival = portal_client(market.rival).post(f"/market/images/{image.pk}/delete/")
    assert rival.status_code == 403
    removed = client.post(f"/market/images/{image.pk}/delete/", follow=True)
    assert "Image removed." in removed.content.decode() and not listing.images.exists()


# --- The seller's page ---------------------------------------------------------------------


def test_the_sellers_page_shows_figures_listings_and_reviews(market: Market):
    forge = market.forge
    template, playbook = market.template, market.playbook
    ReviewFactory.create(
        purchase=paid_purchase(template, market.designer),
        stars=4,
        text="Arms fit first time.",
        reply="Thanks!",
    )
    ReviewFactory.create(
        purchase=paid_purchase(playbook, market.designer2), stars=2, text="Too slow for us."
    )
    Listing.objects.filter(pk=playbook.pk).update(status="retired")
    make_listing(forge, market.vendor, status="draft", title="Secret draft")
    status, html = page(market.viewer, f"/market/sellers/{forge.pk}/")
    assert status == 200
    assert "<h1>Forge</h1>" in html and "Vendor company · 2 listings for sale" in html
    assert 'id="seller"' in html  # the service figures
    assert "Drone arm" in html and "FDM hours" in html and "Secret draft" not in html
    assert "Arms fit first time." in html and "Forge replied" in html
    # the retired playbook's review stays (it counts in the rating) but is not a dead link
    assert "Too slow for us." in html
    assert f'href="/market/listings/{playbook.pk}/"' not in html
    assert f'href="/market/listings/{template.pk}/"' in html
    # reached from a listing's seller panel and from a card
    _, detail = page(market.viewer, f"/market/listings/{template.pk}/")
    assert f'href="/market/sellers/{forge.pk}/"' in detail
    _, browse = page(market.viewer, "/market/")
    assert f'href="/market/sellers/{forge.pk}/"' in browse


def test_a_seller_with_nothing_published_is_404_except_to_its_own_team(market: Market):
    other = market.other
    make_listing(other, market.designer2, status="draft", title="Not yet")
    assert page(market.viewer, f"/market/sellers/{other.pk}/")[0] == 404
    assert page(market.viewer, "/market/sellers/999999/")[0] == 404
    status, html = page(market.designer2, f"/market/sellers/{other.pk}/")
    assert status == 200 and "nothing for sale right now" in html and "No reviews yet" in html
    assert page(market.admin, f"/market/sellers/{other.pk}/")[0] == 200
    signed_out = Client().get(f"/market/sellers/{market.forge.pk}/")
    assert signed_out.status_code == 302 and "/login/" in signed_out["Location"]


def test_playbook_settings_keep_the_sellers_order(market: Market):
    """PostgreSQL's jsonb hands object keys back shortest first; the pages show the settings
    in the order the seller typed them."""
    steps = [
        {
            "title": "Print",
            "settings": {"nozzle_c": 240, "first_layer_mm_s": 20, "bed_c": 80, "fan": "off"},
        }
    ]
    listing = listing_create(
        by=market.vendor, kind="playbook", title="Ordered", price=5, content={"steps": steps}
    )
    stored = Listing.objects.get(pk=listing.pk).versions.get().content["steps"][0]
    assert stored["setting_order"] == ["nozzle_c", "first_layer_mm_s", "bed_c", "fan"]
    _, html = page(market.vendor, f"/market/listings/{listing.pk}/")
    shown = [html.index(f"<dt>{label_with_unit(name)}</dt>") for name in stored["setting_order"]]
    assert shown == sorted(shown)
    _, form = page(market.vendor, f"/market/listings/{listing.pk}/version/")
    assert "nozzle_c = 240\nfirst_layer_mm_s = 20\nbed_c = 80\nfan = off" in form


def test_the_parts_editor_keeps_what_it_does_not_edit(market: Market):
    """A listing made over the API with a process the form doesn't list, parts in lots and
    its own smallest scale and defaults comes back unchanged when saved from the page."""
    content = {
        "parameters": {
            "scale": {"min": 0.8, "max": 1.5, "default": 1.2},
            "quantity": {"min": 2, "max": 40, "default": 4},
        },
        "parts": [{**PART, "process": "inspection", "batch_group": "lot-a"}],
    }
    listing = listing_create(
        by=market.vendor, kind="template", title="Checked", price=5, content=content
    )
    url = f"/market/listings/{listing.pk}/version/"
    _, html = page(market.vendor, url)
    assert '<option value="inspection" selected>inspection</option>' in html
    assert 'name="parts-0-batch_group" value="lot-a"' in html
    saved = portal_client(market.vendor).post(
        url,
        {
            "parts-TOTAL_FORMS": "1",
            "parts-INITIAL_FORMS": "1",
            "parts-MIN_NUM_FORMS": "1",
            "parts-MAX_NUM_FORMS": "200",
            "parts-0-name": "Bracket",
            "parts-0-material": "PLA",
            "parts-0-process": "inspection",
            "parts-0-size_x_mm": "40",
            "parts-0-size_y_mm": "30",
            "parts-0-size_z_mm": "20",
            "parts-0-quantity": "2",
            "parts-0-complexity": "4",
            "parts-0-batch_group": "lot-a",
            "max_scale": "1.5",
            "max_quantity": "40",
        },
    )
    assert saved.status_code == 302
    stored = listing.versions.get().content
    assert stored["parts"][0]["process"] == "inspection"
    assert stored["parts"][0]["batch_group"] == "lot-a"
    assert stored["parameters"] == {
        "scale": {"min": 0.8, "max": 1.5, "default": 1.2},
        "quantity": {"min": 2.0, "max": 40.0, "default": 4.0},
    }


def test_the_create_form_asks_for_parts_in_its_own_words(market: Market):
    client = portal_client(market.vendor)
    base = {"kind": "template", "title": "Empty", "price": "5.00", "currency": "USD"}
    base["licence"] = "personal"
    empty = client.post(
        "/market/sell/new/",
        {
            **base,
            **PARTS_FORM,
            "parts-1-name": "",
            "parts-1-material": "",
            "parts-1-process": "",
            "parts-1-size_x_mm": "",
            "parts-1-size_y_mm": "",
            "parts-1-size_z_mm": "",
            "parts-2-name": "",
            "parts-2-material": "",
            "parts-2-process": "",
            "parts-2-size_x_mm": "",
            "parts-2-size_y_mm": "",
        },
    )
    assert empty.status_code == 400
    html = empty.content.decode()
    assert "Choose a job template, or describe at least one part" in html
    assert "as content" not in html
    # with a job template chosen, the unused scale fields may be left empty
    template = template_create(by=market.designer, name="Kit", parts=[PART])
    chosen = portal_client(market.designer).post(
        "/market/sell/new/",
        {
            **base,
            "title": "Kit",
            "template": template.pk,
            **PARTS_FORM,
            "parts-1-name": "",
            "parts-1-material": "",
            "parts-1-process": "",
            "parts-1-size_x_mm": "",
            "parts-1-size_y_mm": "",
            "parts-1-size_z_mm": "",
            "parts-2-name": "",
            "parts-2-material": "",
            "parts-2-process": "",
            "parts-2-size_x_mm": "",
            "parts-2-size_y_mm": "",
            "max_scale": "",
            "max_quantity": "",
        },
    )
    assert chosen.status_code == 302
    assert Listing.objects.get(title="Kit").template == template


def test_the_sellers_page_query_count_does_not_grow_with_listings(market: Market):
    client = portal_client(market.designer)
    url = f"/market/sellers/{market.forge.pk}/"
    client.get(url)  # the session warms up
    counts = []
    for extra in (0, 10):
        for n in range(extra):
            listing = make_listing(market.forge, market.vendor, title=f"More {n}")
            ReviewFactory.create(purchase=paid_purchase(listing, market.designer))
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


# --- Processes and materials from the catalogue ---------------------------------------------


PLAYBOOK_FORM = {
    "kind": "playbook",
    "title": "Milling recipe",
    "price": "6.00",
    "currency": "USD",
    "licence": "organization",
    "steps-TOTAL_FORMS": "1",
    "steps-INITIAL_FORMS": "0",
    "steps-MIN_NUM_FORMS": "1",
    "steps-MAX_NUM_FORMS": "50",
    "steps-0-title": "Clamp",
}


def test_listing_forms_tick_processes_and_materials_from_the_catalogue(market: Market):
    for kind in ("playbook", "template", "capacity"):
        status, html = page(market.vendor, "/market/sell/new/", kind=kind)
        assert status == 200 and html.count("Comma separated") == 1  # the tags only
        boxes = html[html.index("<legend>Processes</legend>") :]
        assert 'type="checkbox" name="processes" value="milling"' in boxes
        assert re.search(r'value="milling"[^>]*>\s*CNC milling</label>', boxes)
        assert 'type="checkbox" name="materials" value="aluminium_6061"' in html
        assert 'id="materials-by-process"' in html and "js/listing_catalogue.js" in html


def test_a_listing_with_a_process_and_material_that_do_not_fit_is_refused_by_name(market: Market):
    client = portal_client(market.designer)
    refused = client.post(
        "/market/sell/new/", {**PLAYBOOK_FORM, "processes": ["fdm"], "materials": ["steel"]}
    )
    assert refused.status_code == 400
    html = refused.content.decode()
    assert (
        "No chosen process works Steel; choose CNC milling, Drilling or CNC turning too, "
        "or leave it out." in html
    )
    assert "FDM printing works none of the chosen materials: it works PLA, PETG, ABS or TPU." in (
        html
    )
    assert html.count("No chosen process works Steel") == 1  # said once, not per check
    # the ticks stay as they were
    assert re.search(r'name="processes" value="fdm"[^>]*checked>', html)
    assert not Listing.objects.filter(title="Milling recipe").exists()

    made = client.post(
        "/market/sell/new/",
        {**PLAYBOOK_FORM, "processes": ["milling", "drilling"], "materials": ["steel"]},
    )
    assert made.status_code == 302
    listing = Listing.objects.get(title="Milling recipe")
    assert listing.versions.get().content["processes"] == ["milling", "drilling"]
    facets = sorted(listing.facets.values_list("facet", "value"))
    assert facets == [("material", "steel"), ("process", "drilling"), ("process", "milling")]


def test_a_value_outside_the_catalogue_is_refused_not_dropped(market: Market):
    client = portal_client(market.designer)
    refused = client.post(
        "/market/sell/new/", {**PLAYBOOK_FORM, "processes": ["fdm"], "materials": ["PLA+"]}
    )
    assert refused.status_code == 400
    assert "Unknown material &#x27;PLA+&#x27;; use one of the catalogue codes" in (
        refused.content.decode()
    )
    # an older listing's free-text facet shows ticked on its edit page and is named when saved
    listing = market.playbook
    listing.facets.create(facet="material", value="nylon")
    url = f"/market/listings/{listing.pk}/edit/"
    status, html = page(market.vendor, url)
    assert status == 200 and re.search(r'name="materials" value="nylon"[^>]*checked>', html)
    form = {
        "title": listing.title,
        "price": str(listing.price),
        "currency": "USD",
        "licence": listing.licence,
        "processes": ["fdm"],
        "materials": ["pla", "nylon"],
    }
    kept = portal_client(market.vendor).post(url, form)
    assert kept.status_code == 400
    assert "Unknown material &#x27;nylon&#x27;; use one of the catalogue codes" in (
        kept.content.decode()
    )
    fixed = portal_client(market.vendor).post(url, {**form, "materials": ["pla"]})
    assert fixed.status_code == 302
    assert list(listing.facets.filter(facet="material").values_list("value", flat=True)) == ["pla"]


def test_a_typed_parts_process_and_material_must_fit(market: Market):
    client = portal_client(market.vendor)
    base = {
        "kind": "template",
        "title": "Odd kit",
        "price": "8.00",
        "currency": "USD",
        "licence": "personal",
        **PARTS_FORM,
        "parts-2-size_z_mm": "10",
        "parts-2-process": "milling",
    }
    refused = client.post("/market/sell/new/", base)
    assert refused.status_code == 400
    html = refused.content.decode()
    hub = html[html.index("<legend>Part 3</legend>") :]
    assert (
        "CNC milling does not work PETG; it works Aluminium 6061, Steel, Brass"
        in hub[: hub.index("</fieldset>")]
    )
    assert not Listing.objects.filter(title="Odd kit").exists()


def test_a_playbook_version_ticks_its_processes_and_materials(market: Market):
    listing = market.playbook
    url = f"/market/listings/{listing.pk}/version/"
    status, html = page(market.vendor, url)
    assert status == 200
    assert re.search(r'name="materials" value="pla"[^>]*checked>', html)
    form = {
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "1",
        "steps-MIN_NUM_FORMS": "1",
        "steps-MAX_NUM_FORMS": "50",
        "steps-0-title": "Dry",
        "changelog": "Resin too",
        "processes": ["fdm"],
        "materials": ["pla", "resin"],
    }
    refused = portal_client(market.vendor).post(url, form)
    assert refused.status_code == 400
    assert "No chosen process works Resin; choose SLA printing too" in refused.content.decode()
    done = portal_client(market.vendor).post(url, {**form, "processes": ["fdm", "sla"]})
    assert done.status_code == 302
    latest = listing.versions.latest("number")
    assert latest.content["materials"] == ["pla", "resin"]
    assert latest.content["processes"] == ["fdm", "sla"]
