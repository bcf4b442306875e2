"""CAD measurement with trimesh: real STL (ASCII, binary) and OBJ files, STEP with declared
dimensions, and clear errors for bad or oversized files."""

from __future__ import annotations

import io

import pytest
import trimesh
from django.core.exceptions import ValidationError
from django.test import override_settings

from apps.jobs.cad import cad_measure
from tests.jobs.conftest import STL_CUBE_ASCII


def test_ascii_stl_box_is_measured():
    m = cad_measure(data=STL_CUBE_ASCII.encode(), name="box.STL")
    assert m.format == "stl"
    assert sorted(m.size_mm) == [10, 20, 30]
    assert m.watertight
    assert m.volume_cm3 == pytest.approx(6.0)  # 10 x 20 x 30 mm3
    assert m.surface_area_cm2 == pytest.approx(22.0)  # 2 (200 + 300 + 600) mm2
    assert m.triangles == 12


def test_binary_stl_and_obj_of_a_sphere():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=15.0)
    binary = sphere.export(file_type="stl")
    assert isinstance(binary, bytes) and not binary.startswith(b"solid")
    obj = sphere.export(file_type="obj").encode()
    for data, name in ((binary, "ball.stl"), (obj, "ball.obj")):
        m = cad_measure(data=data, name=name)
        assert m.size_mm == pytest.approx((30, 30, 30), abs=0.1)
        assert m.volume_cm3 == pytest.approx(4 / 3 * 3.14159 * 15**3 / 1000, rel=0.02)


def test_an_open_mesh_has_no_volume():
    open_box = "\n".join(STL_CUBE_ASCII.splitlines()[:-14]) + "\nendsolid cube\n"
    m = cad_measure(data=open_box.encode(), name="open.stl")
    assert not m.watertight and m.volume_cm3 is None


def test_step_needs_declared_dimensions():
    step = b"ISO-10303-21;\nHEADER;\nENDSEC;\nDATA;\nENDSEC;\nEND-ISO-10303-21;\n"
    with pytest.raises(ValidationError, match="dimensions declared"):
        cad_measure(data=step, name="bracket.step")
    m = cad_measure(data=step, name="bracket.stp", declared_mm=(40.0, 20.0, 5.0))
    assert m.format == "step" and m.size_mm == (40.0, 20.0, 5.0) and m.volume_cm3 is None
    with pytest.raises(ValidationError, match="not a STEP file"):
        cad_measure(data=b"hello", name="fake.step", declared_mm=(1, 1, 1))


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.stl", "empty"),
        (b"solid x\nfacet nonsense\nendsolid x\n", "broken.stl", "no triangles|Could not read"),
        (b"\x00" * 84, "zero.stl", "no triangles|Could not read"),
        (b"v 0 0 0\nv 1 0 0\n", "lines.obj", "no triangles|Could not read"),
        (b"MZ\x90\x00", "virus.exe", "Unsupported file type"),
    ],
)
def test_bad_files_get_a_clear_error(data, name, message):
    with pytest.raises(ValidationError, match=message):
        cad_measure(data=data, name=name)


def test_oversized_files_and_models_are_refused():
    with override_settings(JOBS_CAD_MAX_BYTES=100), pytest.raises(ValidationError, match="limit"):
        cad_measure(data=STL_CUBE_ASCII.encode(), name="box.stl")
    huge = trimesh.creation.box(extents=(20_000, 10, 10)).export(file_type="stl")
    with pytest.raises(ValidationError, match="nothing over 10 m"):
        cad_measure(data=huge, name="beam.stl")
    flat = io.StringIO()
    flat.write("solid f\nfacet normal 0 0 1\nouter loop\n")
    flat.write("vertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\nendloop\nendfacet\nendsolid f\n")
    with pytest.raises(ValidationError, match="flat or degenerate"):
        cad_measure(data=flat.getvalue().encode(), name="flat.stl")
