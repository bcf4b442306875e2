"""OpenAPI descriptions of our authentication classes (loaded from UsersConfig.ready)."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class RevocableJWTScheme(SimpleJWTScheme):  # type: ignore[no-untyped-call]
    target_class = "apps.users.authentication.RevocableJWTAuthentication"


class VerifiedSessionScheme(SessionScheme):  # type: ignore[no-untyped-call]
    target_class = "apps.users.authentication.VerifiedSessionAuthentication"
