"""The hook through which the maintenance agent adds its view of a machine to the twin page
(DESIGN.md, "Dependencies between apps"), without twins importing maintenance.

Twins and maintenance are siblings in the dependency order: neither may import the other, so
maintenance cannot call a `register_...` function here as materials and energy do for the jobs
scheduler. It registers through Django's app registry instead: its AppConfig sets the attribute
`twin_node_care` in `ready()` to a provider, and `node_care` finds it there at call time.

- node care providers: (user, node) -> `NodeCare` or None. None when the user may not see the
  node's maintenance; otherwise its health now (None before it was first scored), its open
  alerts in words, oldest first, and the address of its maintenance page. The first installed
  app that provides one answers; with none installed, the twin page shows no maintenance part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from django.apps import apps as django_apps

from apps.users.models import User
from apps.vendors.models import FabricationNode

PROVIDER_ATTRIBUTE = "twin_node_care"


class HealthNow(Protocol):
    """The maintenance agent's latest score of a node (0-100) and what took points off."""

    @property
    def score(self) -> float: ...
    @property
    def online(self) -> bool: ...
    @property
    def rul_value(self) -> float | None: ...
    @property
    def rul_unit(self) -> str: ...
    @property
    def components(self) -> Mapping[str, float]: ...


class OpenAlert(Protocol):
    @property
    def severity(self) -> str: ...
    @property
    def severity_label(self) -> str: ...
    @property
    def text(self) -> str: ...


class NodeCare(Protocol):
    @property
    def health(self) -> HealthNow | None: ...
    @property
    def alerts(self) -> Sequence[OpenAlert]: ...
    @property
    def url(self) -> str: ...


class NodeCareProvider(Protocol):
    def __call__(self, *, user: User, node: FabricationNode) -> NodeCare | None: ...


def node_care(*, user: User, node: FabricationNode) -> NodeCare | None:
    for config in django_apps.get_app_configs():
        provider: NodeCareProvider | None = getattr(config, PROVIDER_ATTRIBUTE, None)
        if provider is not None:
            return provider(user=user, node=node)
    return None
