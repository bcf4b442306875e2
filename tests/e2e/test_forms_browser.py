"""The job form in a real browser: a part's process and material stay a pair the catalogue
knows whichever is picked first, and an uploaded model stays named with its measured size after
the estimate (the file input itself is emptied by the browser)."""

from __future__ import annotations

import pytest
import trimesh
from playwright.sync_api import expect

from tests.e2e.conftest import sign_in
from tests.fixtures.shop import Shop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_process_and_material_follow_each_other_and_the_model_is_kept(
    live_server,
    shop: Shop,
    browser,
    tmp_path,
):
    model = tmp_path / "bracket.stl"
    model.write_bytes(trimesh.creation.box(extents=(40, 30, 12)).export(file_type="stl"))
    page = sign_in(browser, live_server.url, shop.designer.email)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live_server.url}/jobs/new/")
    process, material = page.locator("#id_parts-0-process"), page.locator("#id_parts-0-material")
    # a metal picked while the process is FDM printing moves the process to one that works it
    material.select_option("steel")
    assert process.input_value() != "fdm"
    assert process.input_value() in ("milling", "turning", "drilling", "laser_cutting")
    # FDM printing picked for steel moves the material to one FDM works
    process.select_option("fdm")
    assert material.input_value() in ("pla", "petg", "abs", "tpu")
    # the model is kept and named with its size after the estimate
    page.get_by_label("Title").fill("Bracket")
    page.locator("#id_parts-0-cad_upload").set_input_files(str(model))
    page.get_by_role("button", name="Check feasibility and estimate").click()
    kept = page.locator(".kept-upload")
    expect(kept).to_contain_text("bracket.stl")
    expect(kept).to_contain_text("measured 40 × 30 × 12 mm")
    expect(page.locator("#id_parts-0-size_x_mm")).to_have_attribute("placeholder", "40 measured")
    assert errors == []
