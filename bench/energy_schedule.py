"""Energy-aware scheduling benchmark: a day's queue scheduled as soon as possible (the
baseline) and energy-aware, in the same run, on the same fleet and the same hourly outlook.
Prints the energy cost, the kg CO2e, the peak draw per site and the deadlines met of both.

    .venv/bin/python -m bench.energy_schedule [--parts N] [--seed S] [--flexible SHARE]

The outlook is the shape the energy app's built-in forecast gives a site with solar panels:
a grid price with a night trough and morning and evening peaks (a typical European day-ahead
curve: 0.12-0.38 EUR/kWh), a grid carbon intensity of 0.475 kg/kWh, and solar covering part of
the site's load around noon (0 kg/kWh, no marginal cost). Three sites, one of them with a power
cap. Parts: FDM prints and CNC jobs of 0.5-10 h; a share of them (default 60%) have a deadline
12-40 h away and let the platform choose the hours ("balanced"); the rest run as soon as
possible in both runs. No database: this measures the placement the Celery task runs.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imewe.settings_test")
django.setup()

from apps.jobs.scheduler import (  # noqa: E402
    NodeState,
    PartTask,
    Plan,
    SiteOutlook,
    schedule,
)

GRID_CARBON = 0.475
HORIZON = 72
SITES = {1: (40, None), 2: (30, None), 3: (20, 6.0)}  # site: (solar kWp, power cap kW)


def grid_price(hour: int) -> float:
    """EUR/kWh over the day: a night trough, a morning and a larger evening peak."""
    h = hour % 24
    morning = 0.10 * math.exp(-(((h - 8) / 2.0) ** 2))
    evening = 0.16 * math.exp(-(((h - 19) / 2.5) ** 2))
    night = -0.06 * math.exp(-(((h - 3.5) / 2.5) ** 2))
    return round(0.22 + morning + evening + night, 4)


def solar_kw(hour: int, peak_kw: float) -> float:
    h = hour % 24
    return peak_kw * max(0.0, math.sin(math.pi * (h - 6) / 12)) if 6 <= h <= 18 else 0.0


def outlook(site: int, start_hour: int, load_kw: float) -> SiteOutlook:
    solar, cap = SITES[site]
    price, carbon = [], []
    for i in range(HORIZON):
        hour = start_hour + i
        share = min(1.0, solar_kw(hour, solar) / load_kw)
        price.append((1 - share) * grid_price(hour))
        carbon.append((1 - share) * GRID_CARBON)
    return SiteOutlook(tuple(price), tuple(carbon), cap)


def fleet(rng: random.Random) -> list[NodeState]:
    nodes = []
    for i in range(36):
        site = 1 + i % 3
        if i % 4 == 3:
            nodes.append(
                NodeState(
                    id=i + 1,
                    processes=frozenset({"milling"}),
                    materials=frozenset({"aluminium 6061", "steel"}),
                    build_mm=(300.0, 400.0, 600.0),
                    rated_power_kw=rng.uniform(4.0, 5.5),
                    site=site,
                    peak_h=0.05,
                )
            )
        else:
            nodes.append(
                NodeState(
                    id=i + 1,
                    processes=frozenset({"fdm"}),
                    materials=frozenset({"PLA", "PETG"}),
                    build_mm=(210.0, 220.0, 250.0),
                    rated_power_kw=rng.uniform(0.3, 0.5),
                    site=site,
                    peak_h=0.15,
                )
            )
    return nodes


def queue(count: int, flexible: float, rng: random.Random) -> list[PartTask]:
    parts = []
    for i in range(count):
        mill = rng.random() < 0.25
        deadline = rng.uniform(12, 40) if rng.random() < flexible else None
        parts.append(
            PartTask(
                id=i + 1,
                job_id=i + 1,
                priority=rng.randint(3, 7),
                material=rng.choice(["aluminium 6061", "steel"] if mill else ["PLA", "PETG"]),
                process="milling" if mill else "fdm",
                size_mm=(50.0, 60.0, 80.0),
                hours=rng.uniform(0.5, 6.0) if mill else rng.uniform(1.0, 10.0),
                setup_h=0.5 if mill else 0.25,
                deadline_h=deadline,
                load=0.7 if mill else 0.5,
                timing="balanced" if deadline is not None else "asap",
            )
        )
    return parts


def totals(plan: Plan, parts: list[PartTask], nodes: list[NodeState]) -> dict[str, float]:
    deadline = {p.id: p.deadline_h for p in parts}
    placed = [a for a in plan.assignments if a.node is not None]
    missed = sum(
        1 for a in placed if deadline[a.part] is not None and a.finish_h > deadline[a.part] + 1e-3
    )
    return {
        "cost": sum(a.energy_cost or 0.0 for a in placed),
        "co2": sum(a.co2e_kg or 0.0 for a in placed),
        "kwh": sum(a.kwh or 0.0 for a in placed),
        "missed": missed,
        "placed": len(placed),
        "mean_finish": sum(a.finish_h for a in placed) / max(len(placed), 1),
        "moved": sum(1 for a in placed if a.shifted_h > 0),
        "peak_site3": site_peak(plan, parts, nodes, site=3),
    }


def site_peak(plan: Plan, parts: list[PartTask], nodes: list[NodeState], *, site: int) -> float:
    by_node = {n.id: n for n in nodes}
    by_part = {p.id: p for p in parts}
    runs = [a for a in plan.assignments if a.node is not None and by_node[a.node].site == site]
    # just after each start and heat-up end (plans are rounded to 0.0001 h)
    moments = sorted(
        {t + 1e-3 for a in runs for t in (a.start_h, a.start_h + by_node[a.node].peak_h)}
    )
    peak = 0.0
    for m in moments:
        draw = 0.0
        for a in runs:
            if a.start_h <= m < a.finish_h:
                node = by_node[a.node]
                heating = m < a.start_h + node.peak_h
                draw += node.rated_power_kw * (1.0 if heating else by_part[a.part].load)
        peak = max(peak, draw)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=240)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--flexible", type=float, default=0.6)
    parser.add_argument("--start-hour", type=int, default=6, help="local hour the queue starts")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    nodes = fleet(rng)
    parts = queue(args.parts, args.flexible, rng)
    load = {s: sum(n.rated_power_kw * 0.5 for n in nodes if n.site == s) for s in SITES}
    sites = {s: outlook(s, args.start_hour, load[s]) for s in SITES}
    asap_parts = [
        PartTask(**{**p.__dict__, "timing": "asap"}) for p in parts
    ]  # the same queue, nobody lets the platform choose the hours

    started = time.perf_counter()
    asap = schedule(asap_parts, nodes, sites=sites)
    asap_s = time.perf_counter() - started
    started = time.perf_counter()
    aware = schedule(parts, nodes, sites=sites)
    aware_s = time.perf_counter() - started

    flexible = sum(1 for p in parts if p.timing != "asap")
    print(
        f"a day's queue: {len(parts)} parts ({flexible} flexible) on {len(nodes)} nodes at "
        f"{len(SITES)} sites (site 3 capped at {SITES[3][1]:g} kW), seed {args.seed}"
    )
    a, b = totals(asap, asap_parts, nodes), totals(aware, parts, nodes)
    for name, t, secs in (("as soon as possible", a, asap_s), ("energy-aware", b, aware_s)):
        print(
            f"  {name:<20} cost {t['cost']:8.2f} EUR   {t['co2']:7.1f} kg CO2e   "
            f"{t['kwh']:7.1f} kWh   mean finish {t['mean_finish']:5.1f} h   "
            f"deadlines missed {t['missed']}   moved {t['moved']:3d}   "
            f"site-3 peak {t['peak_site3']:.2f} kW   ({secs * 1000:.0f} ms)"
        )
    print(
        f"  energy-aware saves {100 * (1 - b['cost'] / a['cost']):.1f}% of the cost and "
        f"{100 * (1 - b['co2'] / a['co2']):.1f}% of the CO2e, the same energy, "
        f"{b['missed'] - a['missed']:+d} deadlines missed"
    )


if __name__ == "__main__":
    main()
