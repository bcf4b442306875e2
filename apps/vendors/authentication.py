"""Edge gateways authenticate with a device token: `Authorization: Device <token>`.
User JWTs and sessions never count as a device, and a device is never a user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.vendors.gateway_services import gateway_authenticate
from apps.vendors.models import DeviceCredential, Gateway, GatewayCredential
from apps.vendors.services import device_authenticate

KEYWORD = b"device"


@dataclass(frozen=True)
class DevicePrincipal:
    credential: DeviceCredential

    is_authenticated = True
    is_active = True
    is_superuser = False
    is_staff = False
    role = "device"
    pk = None

    @property
    def node_id(self) -> int:
        return self.credential.node_id

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


class DeviceTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[DevicePrincipal, DeviceCredential] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send 'Authorization: Device <token>'.")
        credential = device_authenticate(token=parts[1].decode(errors="replace"))
        if credential is None:
            raise exceptions.AuthenticationFailed(
                "Unknown or revoked device token, or the node is not approved.",
                code="device_token_invalid",
            )
        return DevicePrincipal(credential), credential

    def authenticate_header(self, request: Request) -> str:
        return 'Device realm="imewe"'


class IsDevice(BasePermission):
    message = "Only device credentials may do this; user tokens cannot ingest telemetry."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.user, DevicePrincipal)


GATEWAY_KEYWORD = b"gateway"


@dataclass(frozen=True)
class GatewayPrincipal:
    """A managed gateway, by its own token: `Authorization: Gateway <token>`."""

    credential: GatewayCredential

    is_authenticated = True
    is_active = True
    is_superuser = False
    is_staff = False
    role = "gateway"
    pk = None

    @property
    def gateway(self) -> Gateway:
        return self.credential.gateway

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


class GatewayTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[GatewayPrincipal, GatewayCredential] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != GATEWAY_KEYWORD:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send 'Authorization: Gateway <token>'.")
        credential = gateway_authenticate(token=parts[1].decode(errors="replace"))
        if credential is None:
            raise exceptions.AuthenticationFailed(
                "Unknown or revoked gateway token.", code="gateway_token_invalid"
            )
        return GatewayPrincipal(credential), credential

    def authenticate_header(self, request: Request) -> str:
        return 'Gateway realm="imewe"'


class IsGateway(BasePermission):
    message = "Only a gateway's own token may do this (node tokens and users cannot)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.user, GatewayPrincipal)


# The requests of views behind IsDevice / IsGateway, typed for what their `user` is. DRF takes
# any object with `is_authenticated` as the user; its stubs say Django's user or anonymous,
# hence the one ignore each, here rather than `request: Any` in every handler.


class DeviceRequest(Request):
    """A request behind IsDevice: `request.user` is the node's device principal."""

    user: DevicePrincipal  # type: ignore[assignment]


class GatewayRequest(Request):
    """A request behind IsGateway: `request.user` is the gateway's principal."""

    user: GatewayPrincipal  # type: ignore[assignment]
