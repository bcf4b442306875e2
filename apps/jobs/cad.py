"""Measures uploaded part models: STL (ASCII and binary) and OBJ through trimesh (bounding box,
volume, surface area); STEP is checked to be a STEP file and takes the uploader's declared
dimensions (B-rep geometry needs a CAD kernel the platform does not ship); G-code (a part sliced
for a 3D printer, sent to the printer as it is) is measured from its extruding moves. Units: mm."""

from __future__ import annotations

import io
import logging
import math
import re
from dataclasses import dataclass

import numpy as np
import trimesh
from django.conf import settings
from django.core.exceptions import ValidationError

logger = logging.getLogger(__name__)
EXTENSIONS = {
    ".stl": "stl",
    ".obj": "obj",
    ".step": "step",
    ".stp": "step",
    ".gcode": "gcode",
    ".gco": "gcode",
}
_WORD = re.compile(r"([A-Z])\s*([-+]?(?:\d+\.?\d*|\.\d+))")
MAX_SIZE_MM = 10_000.0  # no machine on the platform builds anything larger


@dataclass(frozen=True)
class CadMeasure:
    format: str
    size_mm: tuple[float, float, float]
    volume_cm3: float | None  # None when the mesh is not closed (its volume is meaningless)
    surface_area_cm2: float | None
    watertight: bool
    triangles: int


def cad_format(name: str) -> str:
    lower = name.lower()
    for ext, fmt in EXTENSIONS.items():
        if lower.endswith(ext):
            return fmt
    raise ValidationError(
        {"file": f"Unsupported file type: upload {', '.join(sorted(EXTENSIONS))}."}
    )


def cad_measure(
    *, data: bytes, name: str, declared_mm: tuple[float, float, float] | None = None
) -> CadMeasure:
    fmt = cad_format(name)
    limit = int(settings.JOBS_CAD_MAX_BYTES)
    if len(data) > limit:
        raise ValidationError(
            {"file": f"The file is {len(data) / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB."}
        )
    if not data:
        raise ValidationError({"file": "The file is empty."})
    if fmt == "gcode":
        return _gcode_measure(data)
    if fmt == "step":
        if not data.lstrip()[:32].upper().startswith(b"ISO-10303-21"):
            raise ValidationError({"file": "This is not a STEP file (no ISO-10303-21 header)."})
        if declared_mm is None:
            raise ValidationError(
                {"size_mm": "STEP files need their dimensions declared (x, y, z in mm)."}
            )
        _check_size(declared_mm)
        return CadMeasure(fmt, declared_mm, None, None, False, 0)
    try:
        mesh = trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh", process=True)
    except Exception as exc:  # trimesh raises many kinds for a malformed file
        logger.info("unreadable %s upload %r: %s", fmt, name, exc)
        raise ValidationError({"file": f"Could not read this {fmt.upper()} file."}) from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise ValidationError({"file": f"The {fmt.upper()} file contains no triangles."})
    extents = np.asarray(mesh.extents, dtype=float)
    size = (float(extents[0]), float(extents[1]), float(extents[2]))
    _check_size(size)
    watertight = bool(mesh.is_watertight)
    return CadMeasure(
        format=fmt,
        size_mm=(round(size[0], 3), round(size[1], 3), round(size[2], 3)),
        volume_cm3=round(abs(float(mesh.volume)) / 1000, 4) if watertight else None,
        surface_area_cm2=round(float(mesh.area) / 100, 4),
        watertight=watertight,
        triangles=len(mesh.faces),
    )


def _check_size(size: tuple[float, float, float]) -> None:
    if any(not np.isfinite(v) or v <= 0 for v in size):
        raise ValidationError({"file": "The model is flat or degenerate (a zero dimension)."})
    if max(size) > MAX_SIZE_MM:
        raise ValidationError(
            {"file": f"The model is {max(size):.0f} mm long; nothing over 10 m can be built."}
        )


def _gcode_measure(data: bytes) -> CadMeasure:
    """The bounding box of the moves that extrude (travel, homing and parking left out), from
    the bed (Z 0) up. Absolute and relative positioning (G90/G91, M82/M83) and G92 are
    followed; arcs count by their end points."""
    if data[:4] == b"GCDE":
        raise ValidationError(
            {"file": "Binary G-code (.bgcode) is not supported: export plain-text G-code."}
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError({"file": "This is not a G-code text file."}) from None
    position = {"X": 0.0, "Y": 0.0, "Z": 0.0, "E": 0.0}
    relative = relative_e = False
    low = [math.inf] * 3
    high = [-math.inf] * 3
    moves = 0
    for raw_line in text.splitlines():
        line = raw_line.split(";", 1)[0].strip().upper()
        if not line:
            continue
        words = dict(_WORD.findall(line))
        code = line.split(None, 1)[0]
        if code in ("G90", "G91"):
            relative = relative_e = code == "G91"
        elif code in ("M82", "M83"):
            relative_e = code == "M83"
        elif code == "G92":
            for axis, value in words.items():
                if axis in position:
                    position[axis] = float(value)
        elif code in ("G0", "G1", "G2", "G3", "G00", "G01", "G02", "G03"):
            moves += 1
            extruded = False
            for axis in ("X", "Y", "Z", "E"):
                if axis not in words:
                    continue
                value = float(words[axis])
                if axis == "E":
                    extruded = value > 0 if relative_e else value > position["E"]
                    position["E"] = position["E"] + value if relative_e else value
                else:
                    position[axis] = position[axis] + value if relative else value
            if extruded:
                for index, axis in enumerate(("X", "Y", "Z")):
                    low[index] = min(low[index], position[axis])
                    high[index] = max(high[index], position[axis])
    if moves == 0:
        raise ValidationError({"file": "This G-code file has no moves (G0/G1)."})
    if not math.isfinite(low[0]):
        raise ValidationError({"file": "This G-code file extrudes nothing: it prints no part."})
    size = (high[0] - low[0], high[1] - low[1], high[2])
    _check_size(size)
    return CadMeasure(
        format="gcode",
        size_mm=(round(size[0], 3), round(size[1], 3), round(size[2], 3)),
        volume_cm3=None,
        surface_area_cm2=None,
        watertight=False,
        triangles=0,
    )
