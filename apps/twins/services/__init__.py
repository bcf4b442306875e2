"""Every write on twins: edits, versions, sharing and locks (edits.py), simulation runs
(simulations.py) and mixing recipes (recipes.py)."""

from apps.twins.services.edits import (
    LEVELS,
    MAX_DOCUMENT_BYTES,
    MAX_OPS_PER_EDIT,
    EditRejected,
    EditResult,
    lock_acquire,
    lock_heartbeat,
    lock_release,
    locks_expire,
    twin_create,
    twin_diff,
    twin_edit,
    twin_group,
    twin_model_upload,
    twin_revert,
    twin_share,
)
from apps.twins.services.recipes import recipe_outcome, recipe_save
from apps.twins.services.simulations import simulation_run, simulation_start

__all__ = [
    "LEVELS",
    "MAX_DOCUMENT_BYTES",
    "MAX_OPS_PER_EDIT",
    "EditRejected",
    "EditResult",
    "lock_acquire",
    "lock_heartbeat",
    "lock_release",
    "locks_expire",
    "recipe_outcome",
    "recipe_save",
    "simulation_run",
    "simulation_start",
    "twin_create",
    "twin_diff",
    "twin_edit",
    "twin_group",
    "twin_model_upload",
    "twin_revert",
    "twin_share",
]
