"""A printer connected through its own server (its configuration's edge section names OctoPrint,
Moonraker or PrusaLink) prints the G-code it is sent and cannot slice: the scheduler offers it
only parts sliced as G-code; a part with a model or dimensions goes elsewhere or waits, saying
why."""

from __future__ import annotations

import pytest

from apps.jobs.models import Status
from apps.jobs.services import cad_file_upload, job_submit, parts_schedule
from apps.vendors.services import node_config_save
from tests.fixtures.fleet import Fleet
from tests.fixtures.shop import PRINTER, ready_node
from tests.jobs.test_gcode_parts import sliced

pytestmark = pytest.mark.django_db
DIMENSIONS = {"material": "PLA", "process": "fdm", "size_x_mm": 20, "size_y_mm": 20}


def behind_octoprint(fleet: Fleet, name: str):
    node = ready_node(fleet, **{**PRINTER, "name": name})
    edge = {"protocol": "octoprint", "url": "http://octopi.local", "api_key": "k"}
    node_config_save(node=node, by=fleet.vendor, config={"edge": edge})
    return node


def test_only_sliced_parts_go_to_a_printer_behind_octoprint(fleet: Fleet):
    octopi = behind_octoprint(fleet, "OctoPi-1")
    cad = cad_file_upload(by=fleet.designer, name="clip.gcode", data=sliced(20, 20, 2))
    job = job_submit(
        by=fleet.designer,
        title="Mixed",
        parts=[
            {"name": "sliced", "material": "PLA", "process": "fdm", "cad_file": cad.pk},
            {**DIMENSIONS, "name": "dims", "size_z_mm": 5},
        ],
    )
    parts_schedule()
    parts = {p.name: p for p in job.parts.all()}
    assert parts["sliced"].assigned_node == octopi
    # the only printer is behind OctoPrint: the part without G-code waits, saying why
    assert parts["dims"].assigned_node is None and parts["dims"].status == Status.VALIDATED
    assert "a machine that makes it from a model" in parts["dims"].placement["reason"]
    # a printer that slices (no printer server in its configuration) takes it
    other = ready_node(fleet, **{**PRINTER, "name": "Printer-B"})
    parts_schedule()
    parts["dims"].refresh_from_db()
    assert parts["dims"].assigned_node == other


def test_a_printer_whose_configuration_moved_off_octoprint_takes_models_again(fleet: Fleet):
    octopi = behind_octoprint(fleet, "OctoPi-1")
    node_config_save(node=octopi, by=fleet.vendor, config={"nozzle_mm": 0.4})
    job = job_submit(
        by=fleet.designer, title="Dims", parts=[{**DIMENSIONS, "name": "d", "size_z_mm": 5}]
    )
    parts_schedule()
    assert job.parts.get().assigned_node == octopi
