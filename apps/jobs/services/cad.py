"""CAD uploads: measured on arrival and kept for the designer who uploaded them."""

from __future__ import annotations

import hashlib

from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile

from apps.jobs.cad import cad_measure
from apps.jobs.models import CadFile
from apps.users.models import User
from apps.users.roles import Action, scope_for


def cad_file_upload(
    *,
    by: User,
    name: str,
    data: bytes,
    declared_mm: tuple[float, float, float] | None = None,
) -> CadFile:
    if scope_for(by, Action.JOB_CREATE) is None:
        raise PermissionDenied("Your role does not allow creating jobs.")
    measure = cad_measure(data=data, name=name, declared_mm=declared_mm)
    cad = CadFile(
        owner=by,
        original_name=name[:255],
        format=measure.format,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        size_x_mm=measure.size_mm[0],
        size_y_mm=measure.size_mm[1],
        size_z_mm=measure.size_mm[2],
        volume_cm3=measure.volume_cm3,
        surface_area_cm2=measure.surface_area_cm2,
        watertight=measure.watertight,
        triangles=measure.triangles,
    )
    cad.file.save(f"{cad.sha256[:16]}.{measure.format}", ContentFile(data), save=False)
    cad.save()
    return cad
