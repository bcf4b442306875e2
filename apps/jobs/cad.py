"""Measures uploaded part models: STL (ASCII and binary) and OBJ through trimesh (bounding box,
volume, surface area); STEP is checked to be a STEP file and takes the uploader's declared
dimensions (B-rep geometry needs a CAD kernel the platform does not ship). Units: mm."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
import trimesh
from django.conf import settings
from django.core.exceptions import ValidationError

logger = logging.getLogger(__name__)
EXTENSIONS = {".stl": "stl", ".obj": "obj", ".step": "step", ".stp": "step"}
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
