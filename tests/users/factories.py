from __future__ import annotations

import factory
from django_otp.oath import totp

from apps.users.models import EncryptedTOTPDevice, Membership, Organization, User
from apps.users.roles import Role
from apps.users.services import user_set_role

PASSWORD = "correct-horse-battery-9"


class OrganizationFactory(factory.django.DjangoModelFactory[Organization]):
    class Meta:
        model = Organization
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    kind = Organization.Kind.DESIGN_TEAM


class UserFactory(factory.django.DjangoModelFactory[User]):
    """A user with PASSWORD, the role's permissions, and a membership of `organization` when
    one is given."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Faker("name")
    role = Role.DESIGNER
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def sync_role(obj: User, create: bool, extracted: object, **kwargs: object) -> None:
        obj.save()
        user_set_role(user=obj, role=obj.role)

    @factory.post_generation
    def organization(obj: User, create: bool, extracted: Organization | None, **kw: object) -> None:
        if extracted is not None:
            MembershipFactory.create(user=obj, organization=extracted)


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)


class EncryptedTOTPDeviceFactory(factory.django.DjangoModelFactory[EncryptedTOTPDevice]):
    """A confirmed authenticator with a random key (enrolment is `totp_device_start` and
    `totp_device_confirm`, which need a request)."""

    class Meta:
        model = EncryptedTOTPDevice

    user = factory.SubFactory(UserFactory)
    name = "test"
    confirmed = True


def totp_device_for(user: User) -> EncryptedTOTPDevice:
    return EncryptedTOTPDeviceFactory.create(user=user)


def current_code(device: EncryptedTOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
