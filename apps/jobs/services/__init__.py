"""Every write of the jobs app, by sub-domain; re-exported here, so callers import
`apps.jobs.services` whatever module a service lives in."""

from apps.jobs.services.cad import cad_file_upload
from apps.jobs.services.confirmation import (
    part_accept,
    part_decline,
)
from apps.jobs.services.execution import (
    REPORT_FIELDS,
    Release,
    work_complete,
    work_fail,
    work_file,
    work_progress,
    work_queue,
    work_release,
    work_start,
)
from apps.jobs.services.scheduling import (
    part_has_other_nodes,
    part_reschedule,
    parts_heal,
    parts_schedule,
)
from apps.jobs.services.status import (
    ACTIVE_PART_STATUSES,
    job_group,
    job_sync_status,
    part_transition,
)
from apps.jobs.services.submission import (
    DRAFT_JOB,
    MAX_PARTS,
    PART_FIELDS,
    job_cancel,
    job_estimate_preview,
    job_set_priority,
    job_submit,
)
from apps.jobs.services.templates import (
    TEMPLATE_PARAMETERS,
    template_create,
    template_delete,
    template_from_job,
    template_instantiate,
    template_parameters_for,
    template_parts,
    template_spec_check,
)

__all__ = [
    "ACTIVE_PART_STATUSES",
    "DRAFT_JOB",
    "MAX_PARTS",
    "PART_FIELDS",
    "REPORT_FIELDS",
    "Release",
    "TEMPLATE_PARAMETERS",
    "cad_file_upload",
    "job_cancel",
    "job_estimate_preview",
    "job_group",
    "job_set_priority",
    "job_submit",
    "job_sync_status",
    "part_accept",
    "part_decline",
    "part_has_other_nodes",
    "part_reschedule",
    "part_transition",
    "parts_heal",
    "parts_schedule",
    "template_create",
    "template_delete",
    "template_from_job",
    "template_instantiate",
    "template_parameters_for",
    "template_parts",
    "template_spec_check",
    "work_complete",
    "work_fail",
    "work_progress",
    "work_queue",
    "work_file",
    "work_release",
    "work_start",
]
