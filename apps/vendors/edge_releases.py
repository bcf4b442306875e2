"""Gateway software releases: wheels of the project's `edge/` package that rollouts ship to
managed gateways (apps/vendors/rollouts.py; edge/software.py installs them).

A release is built from this checkout's `edge/` (`edge_wheel_build`, flit_core's PEP 517
backend in a scratch directory, so the version is the release's and nothing in the tree
changes) or uploaded as a wheel an admin built elsewhere. Either way `edge_release_register`
checks it before it is stored: a wheel of imewe-edge with that version in its name and
metadata, the gateway's modules inside, no path leaving the install directory, at most
EDGE_RELEASE_MAX_BYTES; its SHA-256 is computed here and sent to gateways, which check it
before installing. Only admins register releases: the software runs on every vendor's
gateways."""

from __future__ import annotations

import email.parser
import hashlib
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models import QuerySet
from packaging.version import InvalidVersion, Version

from apps.core.exceptions import Conflict
from apps.users.models import User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors.models import EdgeRelease

DISTRIBUTION = "imewe-edge"
WHEEL_NAME = re.compile(r"imewe_edge-(?P<version>[^-/]+)-py3-none-any\.whl")
REQUIRED_MODULES = ("edge/__init__.py", "edge/gateway.py", "edge/managed.py", "edge/software.py")
# what the edge imports from PyPI (requirements.txt pins them); informational in the wheel's
# metadata: gateways install a release with --no-deps
EDGE_DEPENDENCIES = ("asyncua", "paho-mqtt", "pymodbus", "PyYAML", "urllib3")


def _max_bytes() -> int:
    return int(settings.EDGE_RELEASE_MAX_BYTES)


def edge_release_list(*, user: User) -> QuerySet[EdgeRelease]:
    """Releases are the platform's, not a vendor's: whoever manages gateways sees them all."""
    if scope_for(user, Action.NODE_MANAGE) is None:
        return EdgeRelease.objects.none()
    return EdgeRelease.objects.all()


def version_clean(raw: str) -> str:
    """The release version in the wheel's canonical spelling (PEP 440), or ValidationError."""
    try:
        version = str(Version(raw.strip()))
    except InvalidVersion:
        raise ValidationError(
            {"version": f"{raw!r} is not a version (PEP 440, e.g. 1.4.0)."}
        ) from None
    if len(version) > 40:
        raise ValidationError({"version": "At most 40 characters."})
    return version


def edge_wheel_build(*, version: str, out_dir: Path, source: Path | None = None) -> Path:
    """Build the wheel of this checkout's `edge/` (or of `source`, a copy of it) as `version`
    into `out_dir`; its path."""
    from flit_core.buildapi import make_wheel_in

    version = version_clean(version)
    source = source or Path(settings.BASE_DIR) / "edge"
    with tempfile.TemporaryDirectory(prefix="imewe-edge-build-") as scratch:
        root = Path(scratch)
        skip = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(source, root / "edge", ignore=skip)
        dependencies = ", ".join(f'"{d}"' for d in EDGE_DEPENDENCIES)
        (root / "pyproject.toml").write_text(
            "[build-system]\n"
            'requires = ["flit_core>=3.9,<5"]\n'
            'build-backend = "flit_core.buildapi"\n\n'
            "[project]\n"
            f'name = "{DISTRIBUTION}"\n'
            f'version = "{version}"\n'
            'description = "The Imewe edge gateway"\n'
            'requires-python = ">=3.11"\n'
            f"dependencies = [{dependencies}]\n\n"
            "[tool.flit.module]\n"
            'name = "edge"\n',
            encoding="utf-8",
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        built = make_wheel_in(root / "pyproject.toml", out_dir)
    return Path(built.file)


def _wheel_problem(handle: IO[bytes], filename: str) -> tuple[str, str]:
    """(version, "") for a wheel of imewe-edge, else ("", why not)."""
    match = WHEEL_NAME.fullmatch(filename)
    if match is None:
        return "", "The file must be named imewe_edge-<version>-py3-none-any.whl."
    try:
        version = version_clean(match["version"])
    except ValidationError as exc:
        return "", " ".join(exc.messages)
    if version != match["version"]:
        return "", f"Name the wheel with the canonical version {version}."
    try:
        with zipfile.ZipFile(handle) as wheel:
            names = wheel.namelist()
            if any(n.startswith("/") or ".." in n.split("/") or "\\" in n for n in names):
                return "", "The wheel holds a path outside its install directory."
            missing = [m for m in REQUIRED_MODULES if m not in names]
            if missing:
                return "", f"Not the gateway's package: {', '.join(missing)} missing."
            info = f"imewe_edge-{version}.dist-info/METADATA"
            if info not in names:
                return "", f"{info} is missing."
            meta = email.parser.BytesParser().parsebytes(wheel.read(info), headersonly=True)
    except (zipfile.BadZipFile, OSError, KeyError, RuntimeError):
        return "", "The file is not a readable wheel (zip)."
    if (meta["Name"] or "").lower().replace("_", "-") != DISTRIBUTION:
        return "", f"The wheel is {meta['Name']!r}, not {DISTRIBUTION}."
    if meta["Version"] != version:
        return "", f"Its metadata says version {meta['Version']!r}, its name {version!r}."
    return version, ""


@transaction.atomic
def edge_release_register(
    *, by: User, wheel: IO[bytes], filename: str, notes: str = ""
) -> EdgeRelease:
    if scope_for(by, Action.SYSTEM_ADMIN) != Scope.ALL:
        raise PermissionDenied("Only admins register gateway software.")
    filename = Path(filename).name
    digest, size = hashlib.sha256(), 0
    wheel.seek(0)
    for chunk in iter(lambda: wheel.read(1 << 16), b""):
        size += len(chunk)
        if size > _max_bytes():
            raise ValidationError({"wheel": f"A release is at most {_max_bytes()} bytes."})
        digest.update(chunk)
    if size == 0:
        raise ValidationError({"wheel": "The file is empty."})
    wheel.seek(0)
    version, problem = _wheel_problem(wheel, filename)
    if problem:
        raise ValidationError({"wheel": problem})
    if EdgeRelease.objects.filter(version=version).exists():
        raise Conflict(f"Release {version} exists; give the new build a new version.")
    wheel.seek(0)
    release = EdgeRelease(
        version=version,
        sha256=digest.hexdigest(),
        size_bytes=size,
        notes=notes.strip()[:2000],
        created_by=by,
    )
    release.wheel.save(filename, File(wheel, name=filename), save=False)
    release.save()
    return release


def release_spec(release: EdgeRelease) -> dict[str, Any]:
    """How a configuration document names a release (edge/software.py reads it)."""
    return {
        "version": release.version,
        "sha256": release.sha256,
        "size": release.size_bytes,
        "path": f"software/{release.pk}/",
    }
