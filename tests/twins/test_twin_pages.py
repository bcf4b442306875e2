"""The twins' portal pages: list, create, detail, diff, revert, share, simulate, mixer; who
may open and change what."""

from __future__ import annotations

import pytest

from apps.twins.models import DigitalTwin, Simulation
from apps.twins.services import twin_edit
from tests.conftest import portal_client
from tests.fixtures.studio import Studio

pytestmark = pytest.mark.django_db


def test_list_and_create_including_a_mixing_session(studio: Studio):
    designer = portal_client(studio.designer)
    page = designer.get("/twins/")
    assert page.status_code == 200 and b"Spindle A" in page.content and b"New twin" in page.content
    assert b"Spindle A" not in portal_client(studio.outsider).get("/twins/").content
    filtered = designer.get("/twins/?type=mill")
    assert b"Spindle A" not in filtered.content and b"No twins match" in filtered.content

    made = designer.post("/twins/new/", {"name": "Cryo lab", "twin_type": "mixer", "tags": "a, b"})
    twin = DigitalTwin.objects.get(name="Cryo lab")
    assert made.status_code == 302 and made["Location"] == f"/twins/{twin.pk}/"
    assert twin.tags == ["a", "b"]
    assert set(twin.properties) == {"material", "recipe", "params"}
    assert {"rpm", "temperature_c", "force_n", "duration_min"} <= set(twin.properties["params"])
    mixer = designer.get(f"/twins/{twin.pk}/mixer/")
    assert mixer.status_code == 200 and b"mixer-catalog" in mixer.content
    # a twin that is not a mixing session has no mixer
    assert designer.get(f"/twins/{studio.twin.pk}/mixer/").status_code == 302

    bad = designer.post("/twins/new/", {"name": "", "twin_type": "spaceship"}, follow=True)
    assert b"The twin was not created" in bad.content and b"twin_type" in bad.content
    refused = portal_client(studio.viewer).post("/twins/new/", {"name": "V", "twin_type": "part"})
    assert refused.status_code == 302 and not DigitalTwin.objects.filter(name="V").exists()
    assert b"New twin" not in portal_client(studio.viewer).get("/twins/").content


def test_detail_history_diff_and_revert(studio: Studio):
    twin = studio.twin
    twin_edit(
        by=studio.designer,
        twin=twin,
        base_version=1,
        ops=[{"op": "set", "path": "spindle/max_rpm", "value": 42000}],
        message="slower",
    )
    designer = portal_client(studio.designer)
    page = designer.get(f"/twins/{twin.pk}/")
    assert page.status_code == 200
    for text in (b"slower", b"Revert to v1", b"twin_detail.js", b"importmap", b"Share"):
        assert text in page.content, text
    diff = designer.get(f"/twins/{twin.pk}/diff/?from=1&to=2")
    assert (
        diff.status_code == 200 and b"/spindle/max_rpm" in diff.content and b"42000" in diff.content
    )
    assert designer.get(f"/twins/{twin.pk}/diff/?from=a&to=2").status_code == 302

    viewer = portal_client(studio.viewer)
    seen = viewer.get(f"/twins/{twin.pk}/")
    assert (
        seen.status_code == 200
        and b"Revert to" not in seen.content
        and b"Share" not in seen.content
    )
    denied = viewer.post(f"/twins/{twin.pk}/revert/", {"version": 1}, follow=True)
    assert b"Not reverted" in denied.content
    assert DigitalTwin.objects.get(pk=twin.pk).version == 2

    done = designer.post(f"/twins/{twin.pk}/revert/", {"version": 1}, follow=True)
    assert b"Reverted to version 1: this is version 3" in done.content
    assert DigitalTwin.objects.get(pk=twin.pk).properties["spindle"]["max_rpm"] == 60000

    for who in ("outsider", "rival"):
        client = portal_client(studio.user(who))
        assert client.get(f"/twins/{twin.pk}/").status_code == 404, who
        assert client.get(f"/twins/{twin.pk}/diff/?from=1&to=2").status_code == 404, who
        assert client.post(f"/twins/{twin.pk}/revert/", {"version": 1}).status_code == 404, who


def test_share_from_the_page(studio: Studio):
    twin = studio.twin
    outsider = studio.outsider
    assert portal_client(outsider).get(f"/twins/{twin.pk}/").status_code == 404
    owner = portal_client(studio.designer)
    shared = owner.post(
        f"/twins/{twin.pk}/share/", {"user": outsider.email, "level": "view"}, follow=True
    )
    assert b"Shared with outsider@f.test for viewing" in shared.content
    assert portal_client(outsider).get(f"/twins/{twin.pk}/").status_code == 200
    nobody = owner.post(
        f"/twins/{twin.pk}/share/", {"user": "x@y.test", "level": "view"}, follow=True
    )
    assert b"no user with that e-mail" in nobody.content
    colleague = portal_client(studio.colleague)  # may see it, may not share it
    refused = colleague.post(
        f"/twins/{twin.pk}/share/", {"user": outsider.email, "level": "none"}, follow=True
    )
    assert b"Not shared" in refused.content
    assert portal_client(outsider).get(f"/twins/{twin.pk}/").status_code == 200


def test_simulate_from_the_page(studio: Studio, django_capture_on_commit_callbacks):
    twin = studio.twin
    designer = portal_client(studio.designer)
    page = designer.get(f"/twins/{twin.pk}/simulate/")
    assert (
        page.status_code == 200
        and b"Run ageing" in page.content
        and b"No simulations yet" in page.content
    )
    form = {
        "kind": "ageing",
        "ageing-component": "spindle",
        "ageing-avg_rpm": 12000,
        "ageing-load_n": 8000,
        "ageing-temperature_c": 70,
        "ageing-duty_cycle": 0.8,
        "ageing-horizon_h": 20000,
        "ageing-threshold": 0.5,
    }
    with django_capture_on_commit_callbacks(execute=True):
        started = designer.post(f"/twins/{twin.pk}/simulate/", form)
    simulation = Simulation.objects.get()
    assert started.status_code == 302
    assert started["Location"] == f"/twins/{twin.pk}/simulations/{simulation.pk}/"
    assert simulation.status == "succeeded"
    result_page = designer.get(started["Location"])
    assert result_page.status_code == 200 and b"twin_simulation.js" in result_page.content
    detail = designer.get(f"/twins/{twin.pk}/")
    assert b"predicted wear now" in detail.content

    bad = designer.post(f"/twins/{twin.pk}/simulate/", {**form, "ageing-duty_cycle": 3})
    assert bad.status_code == 200 and b"Not started" in bad.content and b"duty_cycle" in bad.content
    viewer = portal_client(studio.viewer)
    assert (
        b"may look at simulations but not run them"
        in viewer.get(f"/twins/{twin.pk}/simulate/").content
    )
    assert viewer.post(f"/twins/{twin.pk}/simulate/", form).status_code == 403
    outsider = portal_client(studio.outsider)
    assert outsider.get(f"/twins/{twin.pk}/simulations/{simulation.pk}/").status_code == 404
    assert Simulation.objects.count() == 1


def test_each_role_on_the_twin_pages(studio: Studio):
    """Who sees a node's twin and a mixing session, and who may change them."""
    from apps.twins.services import twin_create

    node_twin = twin_create(by=studio.vendor, name="Mill twin", twin_type="mill", node=studio.node)
    session = twin_create(by=studio.designer, name="Cryo lab", twin_type="mixer")
    expected = {  # role: (sees the node's twin, sees the studio's session, may run simulations)
        "vendor": (True, False, True),
        "operator": (True, False, False),
        "rival": (False, False, True),
        "engineer": (False, True, True),
        "viewer": (False, True, False),
        "admin": (True, True, True),
    }
    for who, (node_seen, session_seen, runs) in expected.items():
        client = portal_client(studio.user(who))
        listing = client.get("/twins/").content
        assert (b"Mill twin" in listing) is node_seen, who
        assert (b"Cryo lab" in listing) is session_seen, who
        detail = client.get(f"/twins/{node_twin.pk}/")
        assert detail.status_code == (200 if node_seen else 404), who
        mixer = client.get(f"/twins/{session.pk}/mixer/")
        assert mixer.status_code == (200 if session_seen else 404), who
        if session_seen:
            # only the owner, admins and people it is shared with for editing may tune it
            can_tune = who == "admin"
            assert (b'data-can-edit="1"' in mixer.content) is can_tune, who
        if node_seen:
            page = client.get(f"/twins/{node_twin.pk}/simulate/").content
            assert (b"Run scenarios" in page) is runs, who


def test_a_mixing_session_made_over_the_api_starts_on_the_defaults(studio: Studio, as_user):
    made = as_user(studio.designer).post(
        "/api/v1/twins/", {"name": "Powder", "twin_type": "mixer"}, format="json"
    )
    assert made.status_code == 201
    properties = made.json()["properties"]
    assert properties["material"] == "PLA" and properties["recipe"] == "ball_mill"
    assert {"rpm", "temperature_c", "force_n", "duration_min", "batch_kg"} == set(
        properties["params"]
    )


def test_a_machines_twin_shows_its_live_readings_and_health_beside_its_properties(
    studio: Studio, django_capture_on_commit_callbacks
):
    # given: the vendor's twin of a node in service that has streamed, with a health score
    from django.utils import timezone

    from apps.maintenance.models import NodeHealth
    from apps.telemetry.services import telemetry_ingest
    from apps.twins.services import twin_create
    from apps.vendors.models import FabricationNode
    from apps.vendors.services import node_config_save, node_transition

    node = studio.node
    node_config_save(node=node, by=studio.vendor, config={"a": 1})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=studio.vendor, reason="up")
    with django_capture_on_commit_callbacks(execute=True):
        telemetry_ingest(
            points=[
                {
                    "node": node.pk,
                    "time": timezone.now().isoformat(),
                    "temperature_c": 41.25,
                    "power_kw": 6.5,
                    "vibration_mm_s": 1.75,
                }
            ],
            node_id=node.pk,
        )
    NodeHealth.objects.update_or_create(
        node=node,
        defaults={"score": 72.0, "online": True, "components": {"failure_risk": 28.0}},
    )
    twin = twin_create(
        by=studio.vendor,
        name="Mill twin",
        twin_type="mill",
        node=node,
        tags=["demo", node.kind],
        properties={"kind": node.get_kind_display(), "rated_power_kw": node.rated_power_kw},
    )
    # when: its vendor opens it
    html = portal_client(studio.vendor).get(f"/twins/{twin.pk}/").content.decode()
    # then: the readings with their units, the health and what took points off; words, not codes
    assert f"{node.name} now" in html and 'id="readings"' in html
    assert '<th scope="row">Power (kW)</th><td data-signal="power_kw">6.50</td>' in html
    assert '<th scope="row">Temperature (°C)</th><td data-signal="temperature_c">41.25</td>' in html
    assert ">72</span> health" in html and "Failure risk: −28.0" in html
    assert "twin_readings.js" in html
    assert '<span class="status">CNC mill</span>' in html and ">cnc_mill<" not in html
    # the site's operator watches the node too; a designer it is shared with sees no readings
    operator = portal_client(studio.operator).get(f"/twins/{twin.pk}/").content.decode()
    assert 'data-signal="power_kw">6.50' in operator
    from apps.twins.services import twin_share

    twin_share(by=studio.vendor, twin=twin, user=studio.designer, level="view")
    designer = portal_client(studio.designer).get(f"/twins/{twin.pk}/").content.decode()
    assert "are for its vendor and the operators of its site" in designer
    assert 'data-signal="power_kw"' not in designer and ">72</span> health" not in designer
    assert "twin_readings.js" not in designer
    # a twin of no machine has no such panel
    plain = portal_client(studio.designer).get(f"/twins/{studio.twin.pk}/").content
    assert b'id="node-now"' not in plain


def test_property_keys_that_are_codes_come_with_their_words(studio: Studio):
    twin = studio.twin
    twin_edit(
        by=studio.designer,
        twin=twin,
        base_version=twin.version,
        ops=[{"op": "set", "path": "params", "value": {"temperature_c": 20.0, "Colour": "red"}}],
        message="params",
    )
    page = portal_client(studio.designer).get(f"/twins/{twin.pk}/")
    labels = page.context["key_labels"]
    assert labels["temperature_c"] == "Temperature (°C)"
    assert "Colour" not in labels and "params" not in labels  # words already
    assert b'id="key-labels"' in page.content


def _machine_twin(studio: Studio):
    """The vendor's twin of the studio's node, with an open critical alert and a health score."""
    from apps.maintenance.models import NodeHealth
    from apps.twins.services import twin_create
    from tests.maintenance.factories import AlertFactory

    node = studio.node
    AlertFactory.create(
        node=node, signal="power_kw", severity="critical", value=14.96, threshold=11.25
    )
    NodeHealth.objects.update_or_create(node=node, defaults={"score": 64.0, "online": False})
    return twin_create(by=studio.vendor, name="Mill twin", twin_type="mill", node=node)


def test_the_machine_panel_shows_what_maintenance_says_to_those_who_maintain_it(studio: Studio):
    twin = _machine_twin(studio)
    node = studio.node

    html = portal_client(studio.vendor).get(f"/twins/{twin.pk}/").content.decode()

    assert ">64</span> health" in html and ">offline</span>" in html
    assert '<ul id="open-alerts">' in html
    assert '<span class="sev sev-critical">Critical</span> Power 14.96 kW above' in html
    assert f'<a href="/maintenance/nodes/{node.pk}/">Maintenance of {node.name}</a>' in html
    # a designer the twin is shared with sees the machine, not its maintenance
    from apps.twins.services import twin_share

    twin_share(by=studio.vendor, twin=twin, user=studio.designer, level="view")
    designer = portal_client(studio.designer).get(f"/twins/{twin.pk}/").content.decode()
    assert 'id="node-now"' in designer
    assert "open-alerts" not in designer and "Maintenance of" not in designer


def test_without_a_maintenance_provider_the_machine_panel_shows_no_maintenance(
    studio: Studio, monkeypatch
):
    # given: no installed app answers for the machine's maintenance (twins alone)
    from django.apps import apps

    from apps.twins.providers import PROVIDER_ATTRIBUTE

    monkeypatch.setattr(apps.get_app_config("maintenance"), PROVIDER_ATTRIBUTE, None)
    twin = _machine_twin(studio)

    # when: the vendor, who maintains the node, opens its twin
    page = portal_client(studio.vendor).get(f"/twins/{twin.pk}/")

    # then: the panel is there with the node's telemetry state, and nothing of maintenance
    html = page.content.decode()
    assert page.status_code == 200 and 'id="node-now"' in html
    assert "no readings yet" in html and "Live telemetry" in html
    assert page.context["live"]["maintain"] is False
    assert "open-alerts" not in html and "Maintenance of" not in html
    assert "has not scored" not in html and "</span> health" not in html
