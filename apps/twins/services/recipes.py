"""The spatial mixer: outcomes of a material, recipe and parameters at once, and recipes saved
under a name, each save its next version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max

from apps.twins import mixer
from apps.twins.models import DigitalTwin, MixRecipe
from apps.twins.selectors import twin_can_edit
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for
from apps.users.selectors import user_organization_ids


def recipe_outcome(*, material: str, recipe: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The simulated outcome; bad choices or parameters come back as per-field errors."""
    problems: dict[str, list[str]] = {}
    if material not in mixer.MATERIALS:
        problems["material"] = [f"One of {', '.join(mixer.MATERIALS)}."]
    if recipe not in mixer.RECIPES:
        problems["recipe"] = [f"One of {', '.join(mixer.RECIPES)}."]
    if problems:
        raise ValidationError(problems)
    try:
        parsed = mixer.params_from(params, recipe)
        return mixer.outcome(material, recipe, parsed)
    except mixer.MixerError as exc:
        errors: dict[str, list[str]] = {}
        for part in str(exc).split("; "):
            name, sep, text = part.partition(": ")
            errors.setdefault(f"params.{name}" if sep else "params", []).append(
                text if sep else part
            )
        raise ValidationError(errors) from exc


def recipe_save(
    *,
    by: User,
    name: str,
    material: str,
    recipe: str,
    params: Mapping[str, Any],
    twin: DigitalTwin | None = None,
    organization: Organization | None = None,
    message: str = "",
) -> MixRecipe:
    """Saves the recipe as the next version of `name` in the organization (the twin's, when
    saved from a mixing session). Concurrent saves of one name get consecutive versions."""
    scope = scope_for(by, Action.TWIN_EDIT)
    if scope is None:
        raise PermissionDenied("Your role does not allow saving recipes.")
    if twin is not None:
        if not twin_can_edit(user=by, twin=twin):
            raise PermissionDenied("You may not save recipes from this mixing session.")
        organization = twin.organization
    orgs = user_organization_ids(user=by)
    if organization is None:
        if len(orgs) != 1:
            raise ValidationError({"organization": ["Say which organization the recipe is for."]})
        organization = Organization.objects.get(pk=orgs[0])
    elif scope != Scope.ALL and organization.pk not in orgs and twin is None:
        raise PermissionDenied("You are not a member of that organization.")
    clean_name = name.strip()
    if not clean_name:
        raise ValidationError({"name": ["Give the recipe a name."]})
    outcome = recipe_outcome(material=material, recipe=recipe, params=params)
    with transaction.atomic():
        # Saves within an organization queue on its row, so each one reads the newest version
        # (an optimistic retry starved a saver when many raced for one name).
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        latest = MixRecipe.objects.filter(organization=organization, name=clean_name).aggregate(
            n=Max("version")
        )["n"]
        return MixRecipe.objects.create(
            organization=organization,
            name=clean_name[:120],
            version=(latest or 0) + 1,
            material=material,
            recipe=recipe,
            params=outcome["params"],
            outcome=outcome,
            message=message.strip()[:300],
            twin=twin,
            author=by,
        )
