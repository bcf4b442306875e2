"""The grouped navigation offers each role exactly the pages the role matrix lets it open, and the
engineer's home shows what an engineer works with (issue 21 items 1 and 5)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.jobs.services import job_submit, parts_schedule, work_start
from apps.portal.navigation import navigation, navigation_urls
from apps.telemetry.services import telemetry_ingest
from apps.users.models import User
from apps.users.roles import MATRIX, PORTALS, Action, Role, Scope
from tests.conftest import portal_client
from tests.fixtures.shop import Shop

pytestmark = pytest.mark.django_db

R, A = Role, Action


def may(action: Action) -> set[Role]:
    return set(MATRIX[action])


def portal(name: str) -> set[Role]:
    return set(PORTALS[name])


# Every page the navigation can offer, and the roles that must be offered it, read straight from
# the matrix (not through the navigation's own checks).
EXPECTED: dict[str, set[Role]] = {
    "/designer/": {R.DESIGNER, R.VIEWER},  # its own home; the engineer has one of their own
    "/engineering/": {R.ENGINEER},
    "/vendor/": portal("vendor"),
    "/ops/": {R.ADMIN, R.OPERATOR},
    "/jobs/": may(A.JOB_VIEW),
    "/jobs/new/": may(A.JOB_CREATE),
    "/jobs/templates/": may(A.JOB_VIEW),
    "/vendor/nodes/": portal("vendor"),
    "/vendor/nodes/new/": portal("vendor") & may(A.NODE_MANAGE),
    "/vendor/work/": portal("vendor"),
    "/vendor/profile/": portal("vendor"),
    "/vendor/gateways/": portal("vendor"),
    "/vendor/rollouts/": portal("vendor"),
    "/ops/gateways/": portal("ops") & may(A.TICKET_MANAGE),
    "/twins/": set(Role),
    "/nodes/": may(A.TELEMETRY_VIEW),
    "/maintenance/": may(A.TICKET_MANAGE),
    "/maintenance/tickets/": may(A.TICKET_MANAGE),
    "/maintenance/rules/": may(A.TICKET_MANAGE),
    "/maintenance/models/": {R.ADMIN, R.OPERATOR, R.ENGINEER},  # the ops-portal roles
    "/materials/": may(A.INVENTORY_MANAGE),
    "/materials/orders/": may(A.INVENTORY_MANAGE),
    "/materials/spools/": may(A.INVENTORY_MANAGE),
    "/materials/catalog/": set(Role),
    "/energy/": may(A.ENERGY_MANAGE),
    "/ops/kpis/": portal("ops") & may(A.KPI_VIEW),
    "/reports/sustainability/": set(Role),  # every role here belongs to an organization
    "/alerts/channels/": set(Role),  # everyone has channels of their own
    "/alerts/deliveries/": set(Role),
    "/ops/approvals/": may(A.SYSTEM_ADMIN),
    "/ops/audit/": may(A.SYSTEM_ADMIN),
    "/market/": set(Role),
    "/market/purchases/": may(A.MARKET_BUY)
    | {r for r, s in MATRIX[A.MARKET_SELL].items() if s == Scope.ALL},
    "/market/sell/": may(A.MARKET_SELL),
    "/market/sales/": may(A.MARKET_SELL),
    "/market/revenue/": may(A.MARKET_SELL),
    "/market/ledger/": {r for r, s in MATRIX[A.MARKET_SELL].items() if s == Scope.ALL},
}


def people(shop: Shop) -> dict[Role, User]:
    return {Role(shop.user(key).role): shop.user(key) for key in ROLE_KEYS}


ROLE_KEYS = ("admin", "designer", "engineer", "vendor", "operator", "viewer")


@pytest.mark.parametrize("role", list(Role))
def test_the_navigation_offers_what_the_matrix_allows_and_nothing_else(shop: Shop, role):
    user = people(shop)[role]
    offered = set(navigation_urls(user=user)) - {"/admin/"}
    expected = {url for url, roles in EXPECTED.items() if role in roles}
    assert offered == expected
    assert ("/admin/" in navigation_urls(user=user)) == user.is_staff


@pytest.mark.parametrize("role", list(Role))
def test_every_offered_page_opens_for_the_role(shop: Shop, role):
    user = people(shop)[role]
    client = portal_client(user)
    for url in navigation_urls(user=user):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)


@pytest.mark.parametrize("role", list(Role))
def test_pages_not_offered_are_refused(shop: Shop, role):
    """Where the matrix says no, the page says no too: the navigation hides nothing a role may
    open from a page that answers, and offers nothing that refuses."""
    user = people(shop)[role]
    client = portal_client(user)
    for url, roles in EXPECTED.items():
        if role in roles or role in OPEN_BUT_NOT_OFFERED.get(url, ()):
            continue
        assert client.get(url).status_code in {403, 404}, url


# Pages a role may open but is not offered: the overviews of portals other than its home, whose
# pages sit in the home group (the admin may enter every portal), and the purchases of roles
# that neither buy nor moderate (an empty page).
OPEN_BUT_NOT_OFFERED = {
    "/designer/": portal("designer"),
    "/engineering/": portal("engineering"),
    "/ops/": portal("ops"),
    "/market/purchases/": set(Role),
}


def test_the_engineer_may_still_not_open_what_the_matrix_refuses(shop: Shop):
    client = portal_client(shop.engineer)
    for url in ("/maintenance/", "/maintenance/tickets/", "/materials/", "/energy/", "/vendor/"):
        assert client.get(url).status_code == 403, url


def test_the_current_page_and_its_group_are_marked(shop: Shop):
    groups = navigation(user=shop.admin, path="/maintenance/tickets/12/")
    current = [(g.label, link.label) for g in groups for link in g.links if link.current]
    assert current == [("Operations", "Tickets")]
    html = portal_client(shop.admin).get("/maintenance/tickets/").content.decode()
    assert '<a href="/maintenance/tickets/" aria-current="page">Tickets</a>' in html


def test_the_home_portal_comes_first_and_holds_the_roles_main_pages(shop: Shop):
    labels = {role: [g.label for g in navigation(user=u)] for role, u in people(shop).items()}
    assert labels[Role.ENGINEER] == ["Engineering", "Marketplace"]
    assert labels[Role.VENDOR] == ["Vendor", "Marketplace"]
    assert labels[Role.OPERATOR] == ["Operations", "Marketplace"]
    assert labels[Role.ADMIN][0] == "Operations"
    engineering = navigation(user=shop.engineer)[0]
    assert [s.label for s in engineering.sections if s.label] == [
        "Jobs",
        "Twins",
        "Live",
        "Maintenance",
        "Materials",
        "Reports",
        "Alerts",
    ]


def test_the_frame_has_a_menu_toggle_and_one_main_navigation(shop: Shop):
    html = portal_client(shop.vendor).get("/vendor/").content.decode()
    assert html.count('<nav aria-label="Main">') == 1
    assert '<details class="site-menu">' in html and "<summary>Menu</summary>" in html
    assert 'href="/ops/audit/"' not in html and 'href="/maintenance/"' in html


def test_the_engineer_lands_on_a_home_with_their_work(shop: Shop):
    # given: a job of the engineer's team with a part running on a printer that reports
    job = job_submit(
        by=shop.designer,
        title="Drone arms",
        parts=[
            {
                "name": "arm",
                "material": "PLA",
                "process": "fdm",
                "size_x_mm": 60,
                "size_y_mm": 40,
                "size_z_mm": 30,
            }
        ],
    )
    parts_schedule()
    part = job.parts.select_related("assigned_node").get()
    node = part.assigned_node
    assert node is not None
    work_start(node_id=node.pk, part_id=part.pk)
    telemetry_ingest(
        points=[
            {
                "node": node.pk,
                "time": (timezone.now() - timedelta(seconds=5)).isoformat(),
                "power_kw": 0.31,
            }
        ],
        node_id=node.pk,
    )
    client = portal_client(shop.engineer)
    # when
    landing = client.get("/", follow=True)
    # then
    assert landing.redirect_chain[-1][0] == "/engineering/"
    html = landing.content.decode()
    assert "<h1>Engineering</h1>" in html
    assert "Drone arms" in html and "In progress: 1" in html
    assert node.name in html and "0.31" in html  # the machine making it, live
    assert "Platform, last 30 days" in html  # the KPIs the matrix lets an engineer see
    assert 'href="/maintenance/models/"' in html
    # the other roles' machines are not listed: a printer idle for another job is not here
    idle = next(n for n in (shop.printer_a, shop.printer_b) if n.pk != part.assigned_node_id)
    assert idle.name not in html


def test_the_engineer_home_says_so_when_nothing_runs(shop: Shop):
    html = portal_client(shop.engineer).get("/engineering/").content.decode()
    assert "Your team has no jobs yet." in html
    assert "None of your team’s parts is being made right now." in html


@pytest.mark.parametrize("role", [Role.DESIGNER, Role.VENDOR, Role.OPERATOR, Role.VIEWER])
def test_the_engineering_portal_is_refused_to_other_roles(shop: Shop, role):
    assert portal_client(people(shop)[role]).get("/engineering/").status_code == 403
