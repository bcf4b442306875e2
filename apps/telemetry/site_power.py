"""The Live pages' power-cap flags: whether the site a watched node stands at draws more than
its power cap now. Telemetry cannot know caps (energy owns them, and energy sits to the right
of telemetry), so telemetry defines this hook and energy fills it from its AppConfig.ready
(apps.energy.receivers): a provider gets the user and the nodes on the page and returns the
sites among theirs that the user may see, with their draw now and cap. No provider, no flags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from apps.core.labels import quantity
from apps.users.models import User
from apps.vendors.models import FabricationNode


@dataclass(frozen=True)
class SitePower:
    site_id: int
    site_name: str
    now_kw: float  # the sum of the fresh power readings of every node standing at the site
    cap_kw: float | None
    reporting: int  # nodes at the site with a fresh reading
    nodes: int  # nodes standing at the site
    node_ids: tuple[int, ...]  # of the nodes asked about, those standing at the site

    @property
    def over_cap(self) -> bool:
        return self.cap_kw is not None and self.cap_kw > 0 and self.now_kw > self.cap_kw

    @property
    def text(self) -> str:
        """ "Site A draws 14.2 kW, over its power cap of 12 kW." """
        draws = f"{self.site_name} draws {quantity(self.now_kw, 'power_kw', digits=3)}"
        if self.cap_kw is None:
            return f"{draws} (no power cap)."
        cap = quantity(self.cap_kw, "power_kw", digits=3)
        if self.over_cap:
            return f"{draws}, over its power cap of {cap}."
        return f"{draws} of its power cap of {cap}."

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site_id,
            "name": self.site_name,
            "now_kw": round(self.now_kw, 3),
            "cap_kw": self.cap_kw,
            "over_cap": self.over_cap,
            "reporting": self.reporting,
            "nodes": self.nodes,
            "node_ids": list(self.node_ids),
            "text": self.text,
        }


SitePowerProvider = Callable[[User, Sequence[FabricationNode]], list[SitePower]]
_providers: list[SitePowerProvider] = []


def register_site_power_provider(fn: SitePowerProvider) -> SitePowerProvider:
    """Called from an app's `ready` (energy). Registering the same function twice is a no-op."""
    if fn not in _providers:
        _providers.append(fn)
    return fn


def site_power_for(*, user: User, nodes: Sequence[FabricationNode]) -> list[SitePower]:
    """The sites of `nodes` that `user` may see, with their draw now against their cap (over
    the cap first); nodes must be ones the user may watch (the caller's selector decides)."""
    if not nodes:
        return []
    found: list[SitePower] = []
    for provider in _providers:
        found.extend(provider(user, nodes))
    return sorted(found, key=lambda s: (not s.over_cap, s.site_name))
