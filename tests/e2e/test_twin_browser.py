"""Two people edit the same twin in two browser contexts against a real daphne (ASGI, with the
websocket) and each sees the other's change, presence and lock; then they tune a mixing
session together."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from apps.twins.models import DigitalTwin, Simulation
from apps.twins.services import twin_create, twin_share
from tests.e2e.conftest import SHOTS, sign_in
from tests.fixtures.fleet import extended
from tests.fixtures.studio import Studio
from tests.twins.factories import AGEING_PARAMS, SimulationFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@dataclass(frozen=True)
class Pair(Studio):
    session: DigitalTwin


@dataclass(frozen=True)
class Simulated(Studio):
    simulation: Simulation


@pytest.fixture
def pair(studio: Studio) -> Pair:
    """The designer's spindle twin and a mixing session, both shared with a colleague."""
    twin_share(by=studio.designer, twin=studio.twin, level="edit", user=studio.colleague)
    session = twin_create(by=studio.designer, name="Cryo lab", twin_type="mixer")
    twin_share(by=studio.designer, twin=session, level="edit", user=studio.colleague)
    return extended(Pair, studio, session=session)


def test_two_people_edit_one_twin_and_see_each_other(pair, asgi_server, browser):
    twin = pair.twin
    url = f"{asgi_server}/twins/{twin.pk}/"
    dee = sign_in(browser, asgi_server, pair.designer.email)  # each page: its own context
    col = sign_in(browser, asgi_server, pair.colleague.email)
    for page in (dee, col):
        page.goto(url)
        expect(page.locator("#live-state")).to_have_text("live · version 1")
    # presence: each sees the other
    expect(dee.locator(f'#presence [data-user="{pair.colleague.email}"]')).to_be_visible()
    expect(col.locator(f'#presence [data-user="{pair.designer.email}"]')).to_be_visible()

    # the designer changes a value; the colleague's editor follows
    rpm = dee.get_by_label("Value of spindle/max_rpm")
    rpm.fill("42000")
    rpm.press("Enter")
    expect(col.get_by_label("Value of spindle/max_rpm")).to_have_value("42000")
    expect(col.locator("#editor-message")).to_contain_text("designer@f.test saved version 2")

    # the colleague adds a nested property; the designer sees the new row
    col.locator("#new-path").fill("spindle/bearing/seal")
    col.locator("#new-value").fill("labyrinth")
    col.get_by_role("button", name="Set").click()
    expect(dee.get_by_label("Value of spindle/bearing/seal")).to_have_value("labyrinth")
    expect(dee.locator("#live-state")).to_have_text("live · version 3")

    # the colleague locks the tools: the designer cannot edit them meanwhile
    col.get_by_role("button", name="Lock tools/0").click()
    expect(dee.get_by_label("Value of tools/0")).to_be_disabled()
    expect(dee.locator('tr[data-path="tools/0"]')).to_contain_text("colleague@f.test")
    expect(dee.get_by_label("Value of tools/1")).to_be_enabled()  # a sibling is not locked
    expect(col.get_by_label("Value of tools/0")).to_be_enabled()
    SHOTS.mkdir(parents=True, exist_ok=True)
    dee.screenshot(path=str(SHOTS / "twin_designer.png"), full_page=True)
    col.screenshot(path=str(SHOTS / "twin_colleague.png"), full_page=True)

    stored = DigitalTwin.objects.get(pk=twin.pk)
    assert stored.version == 3
    assert stored.properties["spindle"]["max_rpm"] == 42000
    assert stored.properties["spindle"]["bearing"]["seal"] == "labyrinth"


def test_two_people_tune_one_mixing_session(pair, asgi_server, browser):
    session = pair.session
    url = f"{asgi_server}/twins/{session.pk}/mixer/"
    dee = sign_in(browser, asgi_server, pair.designer.email)
    col = sign_in(browser, asgi_server, pair.colleague.email)
    for page in (dee, col):
        page.goto(url)
        expect(page.locator("#live-state")).to_have_text("live · version 1")
        expect(page.locator("#out-particle-size")).to_contain_text("µm")
    before = col.locator("#out-particle-size").inner_text()

    dee.locator("#m-recipe").select_option("cryo_mill")
    expect(col.locator("#m-recipe")).to_have_value("cryo_mill")
    slider = dee.locator("#m-duration_min")
    slider.fill("45")  # a range input: sets the value and fires input and change
    expect(col.locator("#m-duration_min")).to_have_value("45")
    expect(col.locator("#out-particle-size")).not_to_have_text(before)
    expect(col.locator("#out-regime")).to_have_text("brittle")

    col.locator("#r-name").fill("Fine PLA")
    col.get_by_role("button", name="Save as a new version").click()
    expect(col.locator("#mixer-message")).to_contain_text("Saved “Fine PLA” as version 1")
    col.screenshot(path=str(SHOTS / "mixer_colleague.png"), full_page=True)
    stored = DigitalTwin.objects.get(pk=session.pk).properties
    assert stored["recipe"] == "cryo_mill" and stored["params"]["duration_min"] == 45


@pytest.fixture
def viewed(pair: Pair) -> Pair:
    """The mixing session also shared, view only, with the studio's viewer (before the browser
    starts: sharing announces itself through the channel layer, synchronously)."""
    twin_share(by=pair.designer, twin=pair.session, level="view", user=pair.viewer)
    return pair


def test_a_viewer_sees_the_mixing_outcome_without_the_save_form(viewed, asgi_server, browser):
    """The outcome is computed by a POST that changes nothing: a view-only share gets it too
    (it failed on a missing CSRF token when only the editors' save form carried one)."""
    session = viewed.session
    page = sign_in(browser, asgi_server, viewed.viewer.email)
    page.goto(f"{asgi_server}/twins/{session.pk}/mixer/")
    expect(page.locator("#out-particle-size")).to_contain_text("µm")
    expect(page.locator("#save-recipe")).to_have_count(0)
    expect(page.locator("#mixer-message")).not_to_contain_text("CSRF")


@pytest.fixture
def aged(studio: Studio) -> Simulated:
    """A finished ageing simulation of the designer's spindle (run here, as the worker would)."""
    from apps.twins.services import simulation_run

    simulation = SimulationFactory.create(
        twin=studio.twin,
        params={**AGEING_PARAMS, "horizon_h": 20000},  # 60% is 12,000 h
    )
    simulation_run(pk=simulation.pk)
    return extended(Simulated, studio, simulation=simulation)


def test_the_ageing_page_plays_the_timeline(aged, asgi_server, browser):
    twin, simulation = aged.twin, aged.simulation
    page = sign_in(browser, asgi_server, aged.designer.email)
    page.goto(f"{asgi_server}/twins/{twin.pk}/simulations/{simulation.pk}/")
    expect(page.locator("#failure-headline")).to_contain_text("Predicted failure:")
    expect(page.locator("#failure-detail")).to_contain_text("Likely between")
    expect(page.locator("#at-time")).to_contain_text("Wear")
    start = page.locator("#at-time").inner_text()
    page.locator("#timeline").fill("60")
    expect(page.locator("#at-time")).not_to_have_text(start)
    expect(page.locator("#at-time")).to_contain_text("12,000 h")
    page.get_by_role("button", name="Play").click()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    expect(page.get_by_role("button", name="Play")).to_be_visible(timeout=15000)  # reached the end
    assert page.locator("#timeline").input_value() == "100"
    expect(page.locator("#heatmap tbody tr")).to_have_count(4)
    page.screenshot(path=str(SHOTS / "twin_ageing.png"), full_page=True)


@pytest.fixture
def scenarios(studio: Studio) -> Simulated:
    """A finished scenarios run of a mill twin (run here, before the browser's event loop)."""
    from apps.twins.services import simulation_run

    mill = twin_create(by=studio.designer, name="Mill model", twin_type="mill")
    simulation = SimulationFactory.create(
        twin=mill, kind=Simulation.Kind.SCENARIOS, params={"hours": 720, "use_telemetry": False}
    )
    simulation_run(pk=simulation.pk)
    return extended(Simulated, dataclasses.replace(studio, twin=mill), simulation=simulation)


def test_the_scenarios_page_says_what_drives_each_result(scenarios, asgi_server, browser):
    mill, simulation = scenarios.twin, scenarios.simulation
    page = sign_in(browser, asgi_server, scenarios.designer.email)
    page.goto(f"{asgi_server}/twins/{mill.pk}/simulations/{simulation.pk}/")
    expect(page.locator("#scenario-summary tbody tr")).to_have_count(4)
    expect(page.locator("#seed-source")).to_contain_text("Machine: CNC mill")
    # "Overheated" has the lower health and the longer life: the page says why
    expect(page.locator("#scenario-comparison")).to_contain_text(
        "Overheated ends with lower health than Heavy load"
    )
    expect(page.locator("#scenario-why li")).to_have_count(4)
    expect(page.locator("#scenario-why")).to_contain_text("Overheated: Health 47.5 = 100 ×")
    expect(page.locator("#scenario-why")).to_contain_text("set by the bearings of the spindle")
    page.screenshot(path=str(SHOTS / "twin_scenarios.png"), full_page=True)
