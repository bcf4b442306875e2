"""Job rows written directly: history (finished jobs and parts) and saved templates as an older
release left them. A job meant to be validated, estimated and scheduled goes through
`job_submit` (and a template through `template_create`), which these skip."""

from __future__ import annotations

import factory

from apps.jobs.models import Job, JobTemplate, Part
from tests.users.factories import OrganizationFactory, UserFactory

BRACKET = {
    "name": "bracket",
    "material": "pla",
    "process": "fdm",
    "quantity": 1,
    "size_x_mm": 60,
    "size_y_mm": 40,
    "size_z_mm": 30,
}


class JobFactory(factory.django.DjangoModelFactory[Job]):
    """A job of a designer in `organization` (a new design team unless given)."""

    class Meta:
        model = Job

    organization = factory.SubFactory(OrganizationFactory)
    owner = factory.LazyAttribute(lambda o: UserFactory.create(organization=o.organization))
    title = factory.Sequence(lambda n: f"Job {n}")


class PartFactory(factory.django.DjangoModelFactory[Part]):
    """A PLA part of 60 x 40 x 30 mm."""

    class Meta:
        model = Part

    job = factory.SubFactory(JobFactory)
    name = factory.Sequence(lambda n: f"part-{n}")
    material = "PLA"
    process = "fdm"
    size_x_mm = 60
    size_y_mm = 40
    size_z_mm = 30


class JobTemplateFactory(factory.django.DjangoModelFactory[JobTemplate]):
    class Meta:
        model = JobTemplate

    organization = factory.SubFactory(OrganizationFactory)
    owner = factory.LazyAttribute(lambda o: UserFactory.create(organization=o.organization))
    name = factory.Sequence(lambda n: f"Template {n}")
    parts = factory.LazyFunction(lambda: [dict(BRACKET)])
