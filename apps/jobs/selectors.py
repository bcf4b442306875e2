from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from apps.jobs.models import CadFile, Job, JobTemplate
from apps.users.models import User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors.lifecycle import ACTIVE_STATUSES
from apps.vendors.models import FabricationNode


def job_list(*, user: User) -> QuerySet[Job]:
    """Jobs `user` may see: their organizations' for designers, engineers and viewers; jobs with
    a part on their nodes (vendors) or their sites' nodes (operators); all for admins."""
    scope = scope_for(user, Action.JOB_VIEW)
    jobs = Job.objects.select_related("owner", "organization")
    if scope == Scope.ALL:
        return jobs
    if scope in (Scope.OWN_ORG, Scope.OWN):
        return jobs.filter(organization__memberships__user=user).distinct()
    if scope == Scope.OWN_NODES:
        return jobs.filter(parts__assigned_node__vendor__memberships__user=user).distinct()
    if scope == Scope.OPERATED:
        return jobs.filter(parts__assigned_node__site__memberships__user=user).distinct()
    return jobs.none()


def job_get_for_user(*, user: User, pk: int) -> Job:
    """The job if `user` may see it; 404, not 403, so ids don't leak."""
    return get_object_or_404(job_list(user=user), pk=pk)


def job_can_change(*, user: User, job: Job) -> bool:
    """Cancel or reprioritise: the owner (own scope) or an admin."""
    scope = scope_for(user, Action.JOB_CREATE)
    return scope == Scope.ALL or (scope == Scope.OWN and job.owner_id == user.pk)


def schedulable_nodes() -> QuerySet[FabricationNode]:
    """Approved nodes that may take work (maintenance nodes count for feasibility: they come
    back; decommissioned and unapproved ones do not)."""
    return FabricationNode.objects.filter(
        approval=FabricationNode.Approval.APPROVED, status__in=ACTIVE_STATUSES
    )


def working_nodes() -> QuerySet[FabricationNode]:
    """Approved nodes that may take new work now (not in maintenance, not retired)."""
    return FabricationNode.objects.filter(
        approval=FabricationNode.Approval.APPROVED,
        status__in=[
            FabricationNode.Status.IDLE,
            FabricationNode.Status.ASSIGNED,
            FabricationNode.Status.EXECUTING,
        ],
    )


def cad_file_get_for_user(*, user: User, pk: int) -> CadFile:
    return get_object_or_404(CadFile.objects.filter(Q(owner=user)), pk=pk)


def template_list(*, user: User) -> QuerySet[JobTemplate]:
    """Templates of the caller's organizations (all for admins)."""
    if scope_for(user, Action.JOB_VIEW) == Scope.ALL:
        return JobTemplate.objects.all()
    if scope_for(user, Action.JOB_VIEW) not in (Scope.OWN_ORG, Scope.OWN):
        return JobTemplate.objects.none()
    return JobTemplate.objects.filter(organization__memberships__user=user).distinct()


def template_get_for_user(*, user: User, pk: int) -> JobTemplate:
    return get_object_or_404(template_list(user=user), pk=pk)
