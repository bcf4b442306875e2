"""Checks an uploaded 3D model for a twin: GLB, glTF (embedded buffers) or STL, within the size
limit, and really what its name says (trimesh must load a non-empty scene from it)."""

from __future__ import annotations

import io
import json

import trimesh
from django.conf import settings
from django.core.exceptions import ValidationError

FORMATS = {".glb": "glb", ".gltf": "gltf", ".stl": "stl"}


def model_check(*, name: str, data: bytes) -> str:
    """The model's format, or a ValidationError saying what is wrong with the file."""
    fmt = next((f for ext, f in FORMATS.items() if name.lower().endswith(ext)), None)
    if fmt is None:
        raise ValidationError({"file": ["Upload a .glb, .gltf or .stl file."]})
    limit = int(settings.TWINS_MODEL_MAX_BYTES)
    if len(data) > limit:
        raise ValidationError(
            {"file": [f"The file is {len(data) / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB."]}
        )
    if not data:
        raise ValidationError({"file": ["The file is empty."]})
    if fmt == "glb" and data[:4] != b"glTF":
        raise ValidationError({"file": ["This is not a GLB file (no glTF header)."]})
    if fmt == "gltf":
        try:
            asset = json.loads(data).get("asset")
        except (ValueError, AttributeError):
            asset = None
        if not isinstance(asset, dict):
            raise ValidationError({"file": ["This is not a glTF file (no JSON 'asset')."]})
    try:
        scene = trimesh.load(io.BytesIO(data), file_type=fmt, force="scene")
    except Exception:  # trimesh raises many types for malformed files
        raise ValidationError(
            {"file": [f"The {fmt.upper()} file could not be read (damaged, or external buffers)."]}
        ) from None
    if not getattr(scene, "geometry", None):
        raise ValidationError({"file": ["The model holds no geometry."]})
    return fmt
