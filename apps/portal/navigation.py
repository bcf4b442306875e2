"""The portals' navigation: which pages each signed-in user is offered, grouped per portal.

Every link carries the check its page makes (the role matrix in apps/users/roles.py, through
`user_can` / `scope_for` / `portal_allows` or the app's own `*_can_view`), so the menu offers
exactly what the role may open. Links are gathered in sections (Jobs, Maintenance, ...) and
each section sits in one portal group: the user's home portal when the section belongs there,
else the first portal of the section's own list that the user may enter. A portal group left
with nothing but its overview is not shown (its pages are in the groups above).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.urls import reverse

from apps.users.models import User
from apps.users.roles import HOME_PORTAL, Action, Role, Scope, portal_allows, scope_for, user_can

Check = Callable[[User], bool]

PORTAL_LABELS = {
    "designer": "Designer",
    "engineering": "Engineering",
    "vendor": "Vendor",
    "ops": "Operations",
}
# Groups after the home portal come in this order.
PORTAL_ORDER = ("designer", "engineering", "vendor", "ops")


def _may(action: Action) -> Check:
    return lambda user: user_can(user, action)


def _portal(portal: str, also: Check | None = None) -> Check:
    return lambda user: portal_allows(user, portal) and (also is None or also(user))


def _anyone(user: User) -> bool:
    return True


def _registry(user: User) -> bool:
    from apps.maintenance.selectors import registry_can_view

    return registry_can_view(user=user)


def _reports(user: User) -> bool:
    return user_can(user, Action.SYSTEM_ADMIN) or user.memberships.exists()


def _buys_or_moderates(user: User) -> bool:
    return user_can(user, Action.MARKET_BUY) or scope_for(user, Action.MARKET_SELL) == Scope.ALL


@dataclass(frozen=True)
class LinkSpec:
    label: str
    url_name: str
    can: Check


@dataclass(frozen=True)
class SectionSpec:
    label: str
    links: tuple[LinkSpec, ...]
    portals: tuple[str, ...]  # where the section belongs, in order of preference


SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec(
        "Jobs",
        (
            LinkSpec("All jobs", "jobs:list", _may(Action.JOB_VIEW)),
            LinkSpec("Submit a job", "jobs:submit", _may(Action.JOB_CREATE)),
            LinkSpec("Job templates", "jobs:templates", _may(Action.JOB_VIEW)),
        ),
        ("designer", "engineering", "ops", "vendor"),
    ),
    SectionSpec(
        "Fleet",
        (
            LinkSpec("Your nodes", "vendors:node-list", _portal("vendor")),
            LinkSpec(
                "Register a node",
                "vendors:node-register",
                _portal("vendor", _may(Action.NODE_MANAGE)),
            ),
            LinkSpec("Work on your machines", "jobs:vendor-work", _portal("vendor")),
            LinkSpec("Gateways", "vendors:gateway-list", _portal("vendor")),
            LinkSpec("Rollouts", "vendors:rollout-list", _portal("vendor")),
            LinkSpec("Vendor profile", "vendors:profile", _portal("vendor")),
        ),
        ("vendor",),
    ),
    SectionSpec(
        "Twins",
        (LinkSpec("Digital twins", "twins:list", _anyone),),
        ("designer", "engineering", "vendor", "ops"),
    ),
    SectionSpec(
        "Live",
        (LinkSpec("Live telemetry", "telemetry:node-watch-list", _may(Action.TELEMETRY_VIEW)),),
        ("ops", "engineering", "vendor", "designer"),
    ),
    SectionSpec(
        "Maintenance",
        (
            LinkSpec("Fleet health", "maintenance:fleet", _may(Action.TICKET_MANAGE)),
            LinkSpec("Tickets", "maintenance:tickets", _may(Action.TICKET_MANAGE)),
            LinkSpec("Threshold rules", "maintenance:rules", _may(Action.TICKET_MANAGE)),
            LinkSpec(
                "Gateways",
                "vendors:ops-gateway-list",
                _portal("ops", _may(Action.TICKET_MANAGE)),
            ),
            LinkSpec("Model registry", "maintenance:models", _registry),
        ),
        ("ops", "engineering", "vendor"),
    ),
    SectionSpec(
        "Materials",
        (
            LinkSpec("Inventory", "materials:inventory", _may(Action.INVENTORY_MANAGE)),
            LinkSpec("Purchase orders", "materials:orders", _may(Action.INVENTORY_MANAGE)),
            LinkSpec("Spools", "materials:spools", _may(Action.INVENTORY_MANAGE)),
            LinkSpec("Material catalog", "materials:catalog", _anyone),
        ),
        ("ops", "vendor", "engineering", "designer"),
    ),
    SectionSpec(
        "Energy",
        (LinkSpec("Energy and carbon", "energy:dashboard", _may(Action.ENERGY_MANAGE)),),
        ("ops", "vendor"),
    ),
    SectionSpec(
        "Reports",
        (
            LinkSpec("Platform KPIs", "portal:kpis", _portal("ops", _may(Action.KPI_VIEW))),
            LinkSpec("Sustainability", "portal:sustainability", _reports),
        ),
        ("ops", "engineering", "designer", "vendor"),
    ),
    SectionSpec(
        "Alerts",
        (
            LinkSpec("Alert channels", "notify:channels", _anyone),
            LinkSpec("Delivery log", "notify:deliveries", _anyone),
        ),
        ("ops", "vendor", "engineering", "designer"),
    ),
    SectionSpec(
        "Administration",
        (
            LinkSpec(
                "Node approvals", "vendors:approvals", _portal("ops", _may(Action.SYSTEM_ADMIN))
            ),
            LinkSpec("Audit log", "portal:audit-log", _portal("ops", _may(Action.SYSTEM_ADMIN))),
            LinkSpec("Django admin", "admin:index", lambda user: user.is_staff),
        ),
        ("ops",),
    ),
)

MARKETPLACE = SectionSpec(
    "Marketplace",
    (
        LinkSpec("Browse", "marketplace:browse", _anyone),
        LinkSpec("Purchases", "marketplace:purchase-list", _buys_or_moderates),
        LinkSpec("Your listings", "marketplace:seller-listings", _may(Action.MARKET_SELL)),
        LinkSpec("Sales", "marketplace:sales", _may(Action.MARKET_SELL)),
        LinkSpec("Revenue", "marketplace:revenue", _may(Action.MARKET_SELL)),
        LinkSpec(
            "Ledger and payouts",
            "marketplace:ledger",
            lambda user: scope_for(user, Action.MARKET_SELL) == Scope.ALL,
        ),
    ),
    (),
)


@dataclass
class NavLink:
    label: str
    url: str
    current: bool = False


@dataclass
class NavSection:
    label: str
    links: list[NavLink]


@dataclass
class NavGroup:
    key: str
    label: str
    sections: list[NavSection] = field(default_factory=list)
    current: bool = False

    @property
    def links(self) -> list[NavLink]:
        return [link for section in self.sections for link in section.links]


def home_portal(user: User) -> str:
    return "ops" if user.is_superuser else HOME_PORTAL[Role(user.role)]


def _section(spec: SectionSpec, user: User) -> NavSection | None:
    links = [NavLink(s.label, reverse(s.url_name)) for s in spec.links if s.can(user)]
    return NavSection(spec.label, links) if links else None


def navigation(*, user: User, path: str = "") -> list[NavGroup]:
    """The groups of links `user` may open; the link whose URL is the longest prefix of `path`
    is marked current, and so is its group."""
    home = home_portal(user)
    portals = [home, *(p for p in PORTAL_ORDER if p != home and portal_allows(user, p))]
    groups = {
        key: NavGroup(
            key,
            PORTAL_LABELS[key],
            [NavSection("", [NavLink("Overview", reverse(f"portal:{key}"))])],
        )
        for key in portals
    }
    for spec in SECTIONS:
        section = _section(spec, user)
        if section is None:
            continue
        where = (
            home if home in spec.portals else next((p for p in spec.portals if p in groups), home)
        )
        groups[where].sections.append(section)
    shown = [g for g in groups.values() if g.key == home or len(g.links) > 1]
    market = _section(MARKETPLACE, user)
    if market is not None:
        shown.append(NavGroup("market", "Marketplace", [market]))
    _mark_current(shown, path)
    return shown


def _mark_current(groups: list[NavGroup], path: str) -> None:
    best: tuple[int, NavGroup, NavLink] | None = None
    for group in groups:
        for link in group.links:
            if path.startswith(link.url) and (best is None or len(link.url) > best[0]):
                best = (len(link.url), group, link)
    if best is not None:
        best[1].current = best[2].current = True


def navigation_urls(*, user: User) -> list[str]:
    """Every URL the navigation offers `user` (for tests and the page crawl)."""
    return [link.url for group in navigation(user=user) for link in group.links]
