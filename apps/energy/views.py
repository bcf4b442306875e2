"""Energy pages of the vendor and ops portals (scoping shows each user their own nodes and
sites): the dashboard, a node's energy (charts, outlook, opportunities, its sources), a site's
energy (charts, outlook, power cap, sources, hourly prices: entry and CSV import), and a source's
edit page. Charts are drawn by static/js/energy.js from specs embedded with json_script."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.core.exceptions import Conflict
from apps.core.forms import form_add_service_error
from apps.energy import conf
from apps.energy.calc import site_key
from apps.energy.forms import (
    CapForm,
    RateForm,
    RatesImportForm,
    SourceForm,
)
from apps.energy.models import Consumption, EnergySource, SourceKind
from apps.energy.opportunities import node_opportunities
from apps.energy.outlook import SiteHours, site_outlook
from apps.energy.selectors import (
    Metered,
    cap_of,
    consumption_by_node,
    consumption_daily,
    consumption_summary,
    emission_factor_list,
    energy_node_get,
    energy_nodes,
    energy_site_visible_get,
    energy_sites,
    energy_sites_visible,
    metered_energy,
    metered_energy_of,
    node_draw_now,
    rate_list,
    site_cap,
    site_draw,
    site_nodes,
    source_get_for_user,
)
from apps.energy.services import (
    rates_import_csv,
    rates_store,
    site_cap_save,
    source_create,
    source_delete,
    source_update,
)
from apps.users.access import action_required
from apps.users.models import Organization
from apps.users.roles import Action
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.models import FabricationNode

SERVICE_ERRORS = (ValidationError, PermissionDenied, Conflict)
PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
OUTLOOK_HOURS = 48
PAGE_SIZE = 25
SOURCE_COLOURS = {
    SourceKind.SOLAR: "#f1c40f",
    SourceKind.WIND: "#5dade2",
    SourceKind.BATTERY: "#8e44ad",
    SourceKind.FUEL_CELL: "#e67e22",
    SourceKind.GRID: "#7f8c8d",
}

energy_required = action_required(Action.ENERGY_MANAGE)


# --- Charts ------------------------------------------------------------------------------------


def _period(request: AuthenticatedHttpRequest) -> tuple[int, datetime, datetime]:
    try:
        days = int(request.GET.get("days", DEFAULT_PERIOD))
    except ValueError:
        days = DEFAULT_PERIOD
    days = days if days in PERIODS else DEFAULT_PERIOD
    end = timezone.now()
    return days, end - timedelta(days=days), end


def _usage_charts(
    rows: QuerySet[Consumption],
    *,
    start: datetime,
    end: datetime,
    prefix: str,
    metered: Metered | None = None,
) -> list[dict[str, Any]]:
    """kWh per day: metered from telemetry (all the nodes drew, idle or running) with the parts'
    recorded kWh by source and their kg CO2e; cost per day; the parts' source mix. A chart with
    nothing to draw carries `no_data`, the reason shown in its place."""
    daily = consumption_daily(rows, start=start, end=end)
    by_day = metered.by_day if metered is not None else {}
    if not any(d["kwh"] for d in daily) and not any(by_day.values()):
        return []
    labels = [d["day"].strftime("%b %d") for d in daily]
    kinds = [k for k in SourceKind.values if any(d["by_source"].get(k) for d in daily)]
    no_parts = (
        "No part finished in this period: cost and source are recorded for each part that "
        "finishes (the metered energy above is what the machines drew, idle included)."
    )
    series: list[dict[str, Any]] = [
        {
            "label": f"Parts: {SourceKind(k).label} (kWh)",
            "data": [round(d["by_source"].get(k, 0.0), 3) for d in daily],
            "colour": SOURCE_COLOURS[SourceKind(k)],
        }
        for k in kinds
    ]
    if metered is not None:
        series.append(
            {
                # a bar of its own beside the parts' stacked bars: parts' kWh are a share of it
                "label": "Metered from telemetry (kWh)",
                "stack": "metered",
                "data": [round(by_day.get(d["day"], 0.0), 3) for d in daily],
                "colour": "#2c3e50",
            }
        )
    if kinds:
        series.append(
            {
                "label": "Parts' carbon (kg CO2e)",
                "type": "line",
                "axis": "y1",
                "dash": True,
                "data": [round(d["co2e_kg"], 3) for d in daily],
                "colour": "#c0392b",
            }
        )
    energy = {
        "id": f"{prefix}-energy",
        "title": "Energy per day: metered from telemetry, and recorded for parts by source",
        "type": "bar",
        "stacked": True,
        "labels": labels,
        "axes": {"y": "Energy (kWh)", "y1": "Carbon (kg CO2e)"},
        "series": series,
    }
    currency = conf.currency()
    cost = {
        "id": f"{prefix}-cost",
        "title": f"Parts' energy cost per day ({currency})",
        "type": "bar",
        "labels": labels,
        "axes": {"y": f"Cost ({currency})"},
        "series": [
            {
                "label": f"Cost ({currency})",
                "data": [float(d["cost"]) for d in daily],
                "colour": "#1e8449",
            }
        ],
    }
    totals = {k: sum(d["by_source"].get(k, 0.0) for d in daily) for k in kinds}
    mix = {
        "id": f"{prefix}-mix",
        "title": "Parts' source mix (kWh)",
        "type": "doughnut",
        "css": "chart-mix",
        "labels": [SourceKind(k).label for k in kinds],
        "series": [
            {
                "label": "kWh",
                "data": [round(totals[k], 3) for k in kinds],
                "colours": [SOURCE_COLOURS[SourceKind(k)] for k in kinds],
            }
        ],
    }
    if not kinds:
        cost["no_data"] = no_parts
        mix["no_data"] = "No part finished in this period, so there is no source mix."
    return [energy, cost, mix]


def _demo_time_scale() -> float | None:
    """`make run`'s time compression when on: parts' kWh are machine time / this."""
    scale = float(settings.DEMO_TIME_SCALE)
    return scale if scale > 1 else None


def _outlook_chart(outlook: SiteHours, prefix: str) -> dict[str, Any]:
    return {
        "id": f"{prefix}-outlook",
        "title": f"Next {len(outlook.hours)} hours: price and carbon of the site's mix",
        "type": "line",
        "labels": [h.start.strftime("%a %H:%M") for h in outlook.hours],
        "axes": {
            "y": f"Price ({outlook.currency}/kWh)",
            "y1": "Carbon (kg CO2e/kWh), renewable share (0-1)",
        },
        "series": [
            {"label": "Price", "data": [round(h.price, 5) for h in outlook.hours]},
            {
                "label": "Carbon",
                "axis": "y1",
                "data": [round(h.carbon, 4) for h in outlook.hours],
                "colour": "#c0392b",
            },
            {
                "label": "Renewable share",
                "axis": "y1",
                "dash": True,
                "data": [round(h.renewable_share, 3) for h in outlook.hours],
                "colour": "#1e8449",
            },
        ],
    }


def _outlook_notes(outlook: SiteHours) -> dict[str, int]:
    notes: dict[str, int] = {"stored": 0, "forecast": 0, "default": 0}
    for hour in outlook.hours:
        notes[hour.price_from] += 1
    return notes


# --- Dashboard ---------------------------------------------------------------------------------


@login_required
@energy_required
def dashboard_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    days, start, end = _period(request)
    nodes = (
        energy_nodes(user=request.user)
        .exclude(status=FabricationNode.Status.DECOMMISSIONED)
        .order_by("vendor__name", "name")
    )
    rows = Consumption.objects.filter(node__in=nodes.values("pk"))
    per_node = consumption_by_node(rows, start=start, end=end)
    node_ids = [n.pk for n in nodes]
    metered = metered_energy_of(nodes=nodes, start=start, end=end)
    draw = node_draw_now(node_ids=node_ids)
    node_rows = [
        {
            "node": n,
            **per_node.get(n.pk, {"kwh": 0.0, "co2e": 0.0, "cost": None, "parts": 0}),
            "metered_kwh": metered.by_node.get(n.pk, 0.0),
            "now_kw": draw.get(n.pk),
        }
        for n in nodes
    ]
    managed = set(energy_sites(user=request.user).values_list("pk", flat=True))
    visible = list(
        energy_sites_visible(user=request.user).select_related("power_cap").order_by("name")
    )
    draws = site_draw(sites=visible)
    sites = [
        {"site": s, "can_manage": s.pk in managed, "cap": cap_of(s), "draw": draws[s.pk]}
        for s in visible
    ]
    context = {
        "days": days,
        "periods": PERIODS,
        "base_url": reverse("energy:dashboard"),
        "summary": consumption_summary(rows=rows, start=start, end=end),
        "metered": metered,
        "demo_time_scale": _demo_time_scale(),
        "now_kw": round(sum(draw.values()), 3),
        "reporting": len(draw),
        "over_cap": [d for d in draws.values() if d.over_cap],
        "charts": _usage_charts(rows, start=start, end=end, prefix="all", metered=metered),
        "node_rows": node_rows,
        "sites": sites,
        "factors": emission_factor_list(),
    }
    return render(request, "energy/dashboard.html", context)


# --- Node --------------------------------------------------------------------------------------


def _node_context(
    request: AuthenticatedHttpRequest, node: FabricationNode, **forms: Any
) -> dict[str, Any]:
    days, start, end = _period(request)
    rows = Consumption.objects.filter(node=node)
    key = site_key(node)
    outlook = site_outlook(site_id=key, now=end, hours=OUTLOOK_HOURS)
    page = Paginator(rows.select_related("job", "part"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    site = node.site or node.vendor
    metered = metered_energy(node_ids=[node.pk], start=start, end=end)
    return {
        "node": node,
        "site": site,
        "site_visible": energy_sites_visible(user=request.user).filter(pk=key).exists(),
        "days": days,
        "periods": PERIODS,
        "base_url": reverse("energy:node", args=[node.pk]),
        "summary": consumption_summary(rows=rows, start=start, end=end),
        "metered": metered,
        "demo_time_scale": _demo_time_scale(),
        "now_kw": node_draw_now(node_ids=[node.pk]).get(node.pk),
        "charts": _usage_charts(
            rows, start=start, end=end, prefix=f"node{node.pk}", metered=metered
        ),
        "outlook": outlook,
        "outlook_chart": _outlook_chart(outlook, f"node{node.pk}"),
        "outlook_notes": _outlook_notes(outlook),
        "opportunities": node_opportunities(node=node, now=end),
        "own_sources": EnergySource.objects.filter(node=node),
        "site_sources": EnergySource.objects.filter(site_id=key),
        "page": page,
        "source_form": forms.get("source_form") or SourceForm(),
    }


@login_required
@energy_required
def node_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    node = energy_node_get(user=request.user, pk=pk)
    return render(request, "energy/node.html", _node_context(request, node))


@require_POST
@login_required
@energy_required
def node_source_add_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    node = energy_node_get(user=request.user, pk=pk)
    form = SourceForm(request.POST)
    if form.is_valid():
        try:
            source = source_create(by=request.user, node=node, **_source_fields(form))
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(request, f"Added {source} to {node.name}.")
            return redirect("energy:node", pk=pk)
    return render(
        request, "energy/node.html", _node_context(request, node, source_form=form), status=400
    )


def _source_fields(form: SourceForm) -> dict[str, Any]:
    values = dict(form.cleaned_data)
    if values["kind"] != SourceKind.BATTERY:
        values["capacity_kwh"] = values["soc_pct"] = None
    return values


# --- Site --------------------------------------------------------------------------------------


def _site_context(
    request: AuthenticatedHttpRequest, site: Organization, **forms: Any
) -> dict[str, Any]:
    days, start, end = _period(request)
    can_manage = energy_sites(user=request.user).filter(pk=site.pk).exists()
    nodes = site_nodes(site=site)
    if not can_manage:
        nodes = nodes.filter(pk__in=energy_nodes(user=request.user).values("pk"))
    rows = Consumption.objects.filter(site=site, node__in=nodes.values("pk"))
    metered = metered_energy(
        node_ids=list(nodes.values_list("pk", flat=True)), start=start, end=end
    )
    outlook = site_outlook(site_id=site.pk, now=end, hours=OUTLOOK_HOURS)
    cap = site_cap(site_id=site.pk)
    rates = rate_list(
        user=request.user,
        site_id=site.pk,
        start=end - timedelta(hours=24),
        end=end + timedelta(hours=OUTLOOK_HOURS),
    ).order_by("hour")
    return {
        "site": site,
        "can_manage": can_manage,
        "nodes": nodes.order_by("name"),
        "days": days,
        "periods": PERIODS,
        "base_url": reverse("energy:site", args=[site.pk]),
        "summary": consumption_summary(rows=rows, start=start, end=end),
        "metered": metered,
        "demo_time_scale": _demo_time_scale(),
        "draw": site_draw(sites=[site])[site.pk],
        "charts": _usage_charts(
            rows, start=start, end=end, prefix=f"site{site.pk}", metered=metered
        ),
        "outlook": outlook,
        "outlook_chart": _outlook_chart(outlook, f"site{site.pk}"),
        "outlook_notes": _outlook_notes(outlook),
        "cap": cap,
        "sources": EnergySource.objects.filter(site=site),
        "rates": rates,
        "cap_form": forms.get("cap_form")
        or CapForm(
            initial={
                "max_kw": cap.max_kw if cap else None,
                "renewable_price_per_kwh": cap.renewable_price_per_kwh if cap else None,
                "currency": cap.currency if cap else "",
            }
        ),
        "source_form": forms.get("source_form") or SourceForm(),
        "rate_form": forms.get("rate_form") or RateForm(),
        "import_form": forms.get("import_form") or RatesImportForm(),
        "import_report": forms.get("import_report"),
    }


def _site_page(
    request: AuthenticatedHttpRequest, site: Organization, status: int = 400, **forms: Any
) -> HttpResponse:
    return render(request, "energy/site.html", _site_context(request, site, **forms), status=status)


@login_required
@energy_required
def site_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    site = energy_site_visible_get(user=request.user, pk=pk)
    return render(request, "energy/site.html", _site_context(request, site))


def _managed_site(request: AuthenticatedHttpRequest, pk: int) -> Organization:
    site = energy_site_visible_get(user=request.user, pk=pk)
    if not energy_sites(user=request.user).filter(pk=pk).exists():
        raise PermissionDenied("You see this site's prices but do not manage them.")
    return site


@require_POST
@login_required
@energy_required
def site_source_add_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    site = _managed_site(request, pk)
    form = SourceForm(request.POST)
    if form.is_valid():
        try:
            source = source_create(by=request.user, site=site, **_source_fields(form))
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(request, f"Added {source} to {site.name}.")
            return redirect("energy:site", pk=pk)
    return _site_page(request, site, source_form=form)


@require_POST
@login_required
@energy_required
def site_cap_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    site = _managed_site(request, pk)
    form = CapForm(request.POST)
    if form.is_valid():
        try:
            cap = site_cap_save(
                by=request.user,
                site=site,
                max_kw=form.cleaned_data["max_kw"],
                renewable_price_per_kwh=form.cleaned_data["renewable_price_per_kwh"],
                currency=form.cleaned_data["currency"] or None,
            )
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            said = f"{cap.max_kw:g} kW" if cap.max_kw else "no cap"
            messages.success(request, f"{site.name}: power cap set ({said}).")
            return redirect("energy:site", pk=pk)
    return _site_page(request, site, cap_form=form)


@require_POST
@login_required
@energy_required
def site_rate_add_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    site = _managed_site(request, pk)
    form = RateForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        item = {
            "site": str(site.pk),
            "hour": data["hour"],
            "price": str(data["price"]),
            "renewable_kw": data["renewable_kw"],
            "currency": data["currency"] or None,
        }
        try:
            report = rates_store(by=request.user, items=[item], source=data["source"])
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            if report.stored:
                messages.success(request, f"Price for {data['hour']:%Y-%m-%d %H:00} UTC saved.")
                return redirect("energy:site", pk=pk)
            for field, errors in report.errors[0]["errors"].items():
                target = field if field in form.fields else None
                form.add_error(target, errors)
    return _site_page(request, site, rate_form=form)


@require_POST
@login_required
@energy_required
def site_rates_import_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    site = _managed_site(request, pk)
    form = RatesImportForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            text = form.cleaned_data["file"].read().decode("utf-8-sig")
            report = rates_import_csv(by=request.user, text=text, site=site)
        except UnicodeDecodeError:
            form.add_error("file", "A UTF-8 CSV file, please.")
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            if not report.errors:
                messages.success(request, f"Imported {report.stored} hourly prices.")
                return redirect("energy:site", pk=pk)
            messages.warning(
                request,
                f"Imported {report.stored} hourly prices; {len(report.errors)} rows were not.",
            )
            return _site_page(request, site, status=200, import_report=report)
    return _site_page(request, site, import_form=form)


# --- Sources -----------------------------------------------------------------------------------


def _source_home(source: EnergySource) -> HttpResponse:
    if source.node_id:
        return redirect("energy:node", pk=source.node_id)
    return redirect("energy:site", pk=source.site_id)


@login_required
@energy_required
def source_edit_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    source = source_get_for_user(user=request.user, pk=pk)
    if request.method == "POST":
        form = SourceForm.for_source(source, request.POST)
        if form.is_valid():
            try:
                source_update(by=request.user, source=source, **_source_fields(form))
            except SERVICE_ERRORS as exc:
                form_add_service_error(form, exc)
            else:
                messages.success(request, f"Saved {source}.")
                return _source_home(source)
        context = {"source": source, "form": form}
        return render(request, "energy/source_edit.html", context, status=400)
    form = SourceForm.for_source(source)
    return render(request, "energy/source_edit.html", {"source": source, "form": form})


@require_POST
@login_required
@energy_required
def source_delete_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    source = source_get_for_user(user=request.user, pk=pk)
    home = _source_home(source)
    try:
        source_delete(by=request.user, source=source)
    except SERVICE_ERRORS as exc:
        messages.error(request, f"Not removed: {exc}")
    else:
        messages.success(request, f"Removed {source}.")
    return home
