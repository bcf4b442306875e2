from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.core.services import notification_send
from apps.users.models import Membership, Organization, User
from apps.users.roles import Role
from apps.users.services import (
    membership_add,
    organization_create,
    roles_sync,
    user_create,
    user_set_role,
)
from apps.vendors.models import FabricationNode
from apps.vendors.services import (
    node_config_save,
    node_decide,
    node_register,
    node_transition,
    vendor_profile_get_or_create,
)

# Development-only logins, printed by `make run` and listed in README. Never use in production.
DEMO_PASSWORD_SUFFIX = "-demo-2026"
DEMO_ORGS = [
    ("Aurora Design Studio", Organization.Kind.DESIGN_TEAM),
    ("Forge Fabrication Co", Organization.Kind.VENDOR),
    ("Lagos Fab Site", Organization.Kind.OPERATOR_SITE),
]
DEMO_USERS = [
    ("admin@imewe.test", "Ada Admin", Role.ADMIN, None),
    ("designer@imewe.test", "Dayo Designer", Role.DESIGNER, "Aurora Design Studio"),
    ("engineer@imewe.test", "Efe Engineer", Role.ENGINEER, "Aurora Design Studio"),
    ("viewer@imewe.test", "Vera Viewer", Role.VIEWER, "Aurora Design Studio"),
    ("vendor@imewe.test", "Victor Vendor", Role.VENDOR, "Forge Fabrication Co"),
    ("operator@imewe.test", "Oluchi Operator", Role.OPERATOR, "Lagos Fab Site"),
]


DEMO_NODES: list[dict[str, Any]] = [
    {
        "name": "Mill-01",
        "kind": "cnc_mill",
        "processes": ["milling", "drilling"],
        "materials": ["aluminium 6061", "steel"],
        "build_x_mm": 600,
        "build_y_mm": 400,
        "build_z_mm": 300,
        "precision_mm": 0.01,
        "rated_power_kw": 7.5,
        "latitude": 6.45,
        "longitude": 3.39,
        "software_version": "fanuc-31i 4.2",
        "config": {"spindle": {"max_rpm": 12000}, "coolant": "flood"},
    },
    {
        "name": "Printer-01",
        "kind": "fdm_printer",
        "processes": ["fdm"],
        "materials": ["PLA", "PETG", "ABS"],
        "build_x_mm": 250,
        "build_y_mm": 210,
        "build_z_mm": 220,
        "precision_mm": 0.1,
        "rated_power_kw": 0.35,
        "latitude": 6.45,
        "longitude": 3.39,
        "software_version": "klipper 0.12",
        "config": {"nozzle_mm": 0.4, "bed_max_c": 110},
    },
    {
        "name": "Printer-02",
        "kind": "fdm_printer",
        "processes": ["fdm"],
        "materials": ["PLA", "PETG", "TPU"],
        "build_x_mm": 300,
        "build_y_mm": 300,
        "build_z_mm": 400,
        "precision_mm": 0.1,
        "rated_power_kw": 0.35,
        "latitude": 6.52,
        "longitude": 3.37,
        "software_version": "marlin 2.1 (Modbus gateway)",
        "config": {"nozzle_mm": 0.6, "bed_max_c": 100},
    },
    {
        # speaks OctoPrint's REST API (edge/simulators/octoprint.py in `make run`): the gateway
        # uploads each part's G-code, starts it and follows it; the bed is cleared by a person
        "name": "Printer-03",
        "kind": "fdm_printer",
        "processes": ["fdm"],
        "materials": ["PLA", "PETG"],
        "build_x_mm": 220,
        "build_y_mm": 220,
        "build_z_mm": 250,
        "precision_mm": 0.1,
        "rated_power_kw": 0.3,
        "latitude": 6.45,
        "longitude": 3.39,
        "software_version": "OctoPrint 1.11 (Marlin)",
        "bed_clear_required": True,
        # how it is connected (what a managed gateway reads; `make run`'s gateway has it in
        # var/edge.yaml): the scheduler then offers it only parts sliced as G-code
        "config": {
            "nozzle_mm": 0.4,
            "bed_max_c": 100,
            "edge": {"protocol": "octoprint", "url": "http://127.0.0.1:5080"},
        },
    },
    {
        "name": "Mill-02",
        "kind": "cnc_mill",
        "processes": ["milling", "drilling"],
        "materials": ["aluminium 6061", "brass"],
        "build_x_mm": 760,
        "build_y_mm": 410,
        "build_z_mm": 500,
        "precision_mm": 0.005,
        "rated_power_kw": 7.5,
        "latitude": 6.52,
        "longitude": 3.37,
        "software_version": "haas ngc (MTConnect agent)",
        # the vendor accepts each part on this mill first (vendor portal: Work on your machines)
        "requires_confirmation": True,
        "config": {"spindle": {"max_rpm": 12000}, "coolant": "mist"},
    },
]


def demo_gcode(width: float, depth: float, height: float) -> bytes:
    """G-code as a slicer writes it, for a hollow box `width` x `depth` x `height` mm: heat,
    home, 0.3 mm layers of one perimeter, park. Each line is a moment of the simulated print."""
    lines = ["; Imewe demo part", "M140 S60", "M104 S210", "M190 S60", "M109 S210", "G28"]
    lines += ["G90", "M82", "G92 E0", "G0 X0 Y0 Z5 F9000"]
    e, z = 0.0, 0.3
    corners = ((width, 0.0), (width, depth), (0.0, depth), (0.0, 0.0))
    while z <= height + 1e-9:
        lines.append(f"G0 X{80:.1f} Y{80:.1f} Z{z:.2f}")
        for x, y in corners:
            e += 0.033 * (width if y == 0.0 or y == depth else depth)
            lines.append(f"G1 X{80 + x:.1f} Y{80 + y:.1f} E{e:.4f} F1800")
        z += 0.3
    lines += ["G91", "G1 Z10", "G90", "G0 X0 Y200", "M104 S0", "M140 S0", "M84"]
    return ("\n".join(lines) + "\n").encode()


def demo_password(role: Role) -> str:
    return f"{role.value}{DEMO_PASSWORD_SUFFIX}"


class Command(BaseCommand):
    help = "Create demo organizations and one user per role (idempotent)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        roles_sync()
        orgs = {}
        for name, kind in DEMO_ORGS:
            orgs[name] = Organization.objects.filter(name=name).first() or organization_create(
                name=name, kind=kind
            )
        for email, name, role, org_name in DEMO_USERS:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = user_create(
                    email=email, password=demo_password(role), role=role, full_name=name
                )
                if role == Role.ADMIN:
                    user.is_superuser = True
                    user.save(update_fields=["is_superuser"])
                notification_send(
                    user=user,
                    title="Welcome to Imewe",
                    body=f"Your role here: {role.label}. The home page shows what it allows.",
                )
                created = "created"
            else:
                user_set_role(user=user, role=role)
                created = "exists "
            if org_name:
                membership_add(
                    user=user, organization=orgs[org_name], org_role=Membership.OrgRole.OWNER
                )
            self.stdout.write(
                f"{created} {role.value:9} {email:24} password: {demo_password(role)}"
            )
        self._seed_fleet(orgs)  # the portal app seeds across apps: it may read them all
        self._seed_twins(orgs)
        self._seed_maintenance()
        self._seed_materials()
        self._seed_spools(orgs)
        self._seed_gcode_job()
        self._seed_energy(orgs)
        self._seed_marketplace()
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _seed_marketplace(self) -> None:
        """Aurora sells a drone-arm template; Forge sells a PETG playbook, a cable-clip
        template (parts given with the listing) and FDM printer hours, and Aurora has bought
        the playbook and the hours (through the fake payment provider), so browsing, the
        buyer's purchases and Forge's revenue page show something."""
        from apps.jobs.services import template_create
        from apps.marketplace.models import Listing
        from apps.marketplace.services import listing_create, listing_publish, purchase_create

        if Listing.objects.exists():
            return
        designer = User.objects.get(email="designer@imewe.test")
        vendor = User.objects.get(email="vendor@imewe.test")
        template = template_create(
            by=designer,
            name="Drone arm kit",
            description="Four arms and a centre plate for a 250 mm quadcopter frame.",
            parts=[
                {
                    "name": "Arm",
                    "material": "PETG",
                    "process": "fdm",
                    "quantity": 4,
                    "size_x_mm": 120,
                    "size_y_mm": 18,
                    "size_z_mm": 12,
                    "complexity": 4,
                },
                {
                    "name": "Centre plate",
                    "material": "PLA",
                    "process": "fdm",
                    "quantity": 1,
                    "size_x_mm": 90,
                    "size_y_mm": 90,
                    "size_z_mm": 4,
                    "complexity": 3,
                },
            ],
            parameters={
                "scale": {"min": 0.8, "max": 1.5, "default": 1.0},
                "quantity": {"min": 1, "max": 20, "default": 1},
            },
        )
        listings = [
            listing_create(
                by=designer,
                kind=Listing.Kind.TEMPLATE,
                title="Drone arm kit (250 mm)",
                summary="Printed quadcopter arms and centre plate, flight-tested.",
                description="Scale it from 0.8 to 1.5 and make up to 20 sets per job.",
                price="18.00",
                tags=["drone", "uav", "frame"],
                template=template,
            ),
            listing_create(
                by=vendor,
                kind=Listing.Kind.PLAYBOOK,
                title="PETG functional parts",
                summary="Dry, print and check PETG parts that take load.",
                price="25.00",
                tags=["petg", "strength"],
                content={
                    "steps": [
                        {
                            "title": "Dry the filament",
                            "instructions": "6 h at 65 C.",
                            "settings": {"dryer_c": 65, "hours": 6},
                            "checks": ["Moisture below 0.2%"],
                        },
                        {
                            "title": "Print",
                            "instructions": "Slow first layer, no part cooling.",
                            "settings": {"nozzle_c": 240, "bed_c": 80, "first_layer_mm_s": 20},
                            "checks": ["First layer adheres", "No stringing"],
                        },
                        {
                            "title": "Inspect",
                            "instructions": "Measure the critical dimensions.",
                            "settings": {"tolerance_mm": 0.2},
                            "checks": ["Within tolerance", "No layer splits"],
                        },
                    ],
                    "materials": ["petg"],
                    "processes": ["fdm"],
                },
            ),
            listing_create(
                by=vendor,
                kind=Listing.Kind.TEMPLATE,
                title="Cable clip set",
                summary="Snap-on clips for 6 to 12 mm cables, tested on Forge's printers.",
                price="4.00",
                tags=["clips", "cable"],
                # a vendor has no job templates: the parts are given with the listing
                content={
                    "parameters": {
                        "scale": {"min": 0.5, "max": 2.0, "default": 1.0},
                        "quantity": {"min": 1, "max": 100, "default": 1},
                    },
                    "parts": [
                        {
                            "name": "Clip 6 mm",
                            "material": "PETG",
                            "process": "fdm",
                            "quantity": 10,
                            "size_x_mm": 14,
                            "size_y_mm": 10,
                            "size_z_mm": 8,
                            "complexity": 3,
                        },
                        {
                            "name": "Clip 12 mm",
                            "material": "PETG",
                            "process": "fdm",
                            "quantity": 10,
                            "size_x_mm": 20,
                            "size_y_mm": 16,
                            "size_z_mm": 8,
                            "complexity": 3,
                        },
                    ],
                },
            ),
            listing_create(
                by=vendor,
                kind=Listing.Kind.CAPACITY,
                title="FDM printer hours in Lagos",
                summary="Prusa-class printers, PLA, PETG, ABS and TPU, 24/7.",
                price="6.50",
                node_kind="fdm_printer",
                min_hours=2,
                max_hours=200,
            ),
        ]
        listings = [listing_publish(by=x.created_by, listing=x) for x in listings]
        for listing, hours in ((listings[1], 1), (listings[3], 12)):
            purchase_create(
                by=designer, listing=listing, client_key=f"demo-{listing.pk}", quantity=hours
            )

    def _seed_materials(self) -> None:
        """Stock of every catalogued material the demo machines take (kg): the first one
        loaded, a reorder point and quantity each, so the stock page and the scheduler's
        material score have something to work with."""
        from apps.materials.models import Inventory
        from apps.materials.selectors import material_for_name
        from apps.materials.services import inventory_create

        vendor = User.objects.get(email="vendor@imewe.test")
        for node in FabricationNode.objects.filter(vendor__name="Forge Fabrication Co"):
            mill = node.kind == FabricationNode.Kind.CNC_MILL
            usual = ("pla", "aluminium_6061")  # loaded first (catalogue codes)
            for i, name in enumerate(sorted(node.materials, key=lambda m: m.lower() not in usual)):
                material = material_for_name(name)
                if material is None:
                    continue
                if Inventory.objects.filter(node=node, material=material).exists():
                    continue
                inventory_create(
                    by=vendor,
                    node=node,
                    material=material,
                    quantity=(60 if mill else 3) / (i + 1),
                    reorder_point=15 if mill else 1,
                    reorder_quantity=50 if mill else 5,
                    loaded=i == 0,
                )
                self.stdout.write(f"stock   {node.name}: {material.name}")

    def _seed_spools(self, orgs: dict[str, Organization]) -> None:
        """Spools for the Spools page and the colour matching: red PLA on the OctoPrint
        printer (the demo G-code job is red), black PLA on Printer-01, blue PETG on the shelf."""
        from apps.materials.models import Spool
        from apps.materials.selectors import material_for_name

        forge = orgs["Forge Fabrication Co"]
        if Spool.objects.filter(vendor=forge).exists():
            return
        nodes = {n.name: n for n in FabricationNode.objects.filter(vendor=forge)}
        for material, colour, grams, name, node in (
            ("PLA", "#e11d48", 850.0, "Signal red PLA", "Printer-03"),
            ("PLA", "#111827", 420.0, "Matte black PLA", "Printer-01"),
            ("PETG", "#1d4ed8", 1000.0, "Ocean blue PETG", None),
        ):
            found = material_for_name(material)
            if found is None:
                continue
            Spool.objects.create(
                vendor=forge,
                material=found,
                colour_hex=colour,
                remaining_g=grams,
                name=name,
                node=nodes.get(node) if node else None,
            )
            self.stdout.write(f"spool   {name}{f' on {node}' if node else ''}")

    def _seed_gcode_job(self) -> None:
        """A job of two sliced parts in red PLA (once): only the OctoPrint printer has red
        loaded, so its gateway prints them; the second waits until someone confirms the bed is
        clear (the node's page, "The bed is clear")."""
        from apps.jobs.models import Job
        from apps.jobs.services import cad_file_upload, job_submit

        title = "Cable clips (printed from G-code)"
        if Job.objects.filter(title=title).exists():
            return
        designer = User.objects.get(email="designer@imewe.test")
        parts = []
        clips = (("clip-left.gcode", (30.0, 12.0, 6.0)), ("clip-right.gcode", (12.0, 30.0, 6.0)))
        for name, size in clips:
            cad = cad_file_upload(by=designer, name=name, data=demo_gcode(*size))
            parts.append(
                {
                    "name": name.removesuffix(".gcode"),
                    "material": "PLA",
                    "process": "fdm",
                    "colour_hex": "#e11d48",
                    "cad_file": cad.pk,
                }
            )
        job_submit(by=designer, title=title, parts=parts)
        self.stdout.write(f"job     {title}")

    def _seed_maintenance(self) -> None:
        """Cold-start history for the maintenance models (once): simulated run-to-failure mills
        (the RUL model's units, and the failure model's labelled rows: failure within a day)
        and, where the shared data directory has it, AI4I 2020; the models train in the
        background worker, as the nightly task would."""
        from pathlib import Path

        from django.conf import settings

        from apps.maintenance.learning.runs import simulate_runs, to_csv_rows
        from apps.maintenance.models import HistorySet
        from apps.maintenance.services.history import history_import
        from apps.maintenance.tasks import models_train_task

        if HistorySet.objects.exists():
            return
        rows = to_csv_rows(simulate_runs(24, seed=2026))
        report = history_import(
            rows=({k: "" if v is None else str(v) for k, v in row.items()} for row in rows),
            columns=list(rows[0]),
            kind=HistorySet.Kind.RUN_TO_FAILURE,
            name="Simulated mills, run to failure (demo)",
            source="apps.maintenance.learning.runs.simulate_runs(24, seed=2026)",
        )
        self.stdout.write(f"history {report.stored} rows of simulated run-to-failure mills")
        ai4i = Path(settings.BASE_DIR).parent / "shared" / "data" / "ai4i2020.csv"
        if ai4i.is_file():
            from apps.maintenance.management.commands.import_history import ai4i_rows

            columns, ai4i_history, kind = ai4i_rows(ai4i)
            report = history_import(
                rows=ai4i_history, columns=columns, kind=kind, name="AI4I 2020", source=str(ai4i)
            )
            self.stdout.write(f"history {report.stored} rows of AI4I 2020 (labelled failures)")
        transaction.on_commit(models_train_task.delay)

    def _seed_energy(self, orgs: dict[str, Organization]) -> None:
        """The Lagos site's energy: rooftop solar, a battery and the grid, a 12 kW cap, and
        hourly grid prices for the last two weeks and the next two days (a night trough, a
        morning and a larger evening peak), so the outlook, the energy-aware scheduler and the
        dashboard have real numbers."""
        import math
        from datetime import timedelta

        from django.utils import timezone

        from apps.energy.models import EnergySource, SitePowerCap
        from apps.energy.services import rates_store, site_cap_save, source_create

        site = orgs["Lagos Fab Site"]
        operator = User.objects.get(email="operator@imewe.test")
        if not EnergySource.objects.filter(site=site).exists():
            sources: tuple[tuple[str, str, dict[str, Any]], ...] = (
                ("solar", "Rooftop PV", {"capacity_kw": 15.0, "efficiency": 0.85}),
                (
                    "battery",
                    "Battery bank",
                    {
                        "capacity_kw": 5.0,
                        "capacity_kwh": 20.0,
                        "soc_pct": 70.0,
                        "reserve_pct": 20.0,
                    },
                ),
                ("grid", "Grid connection", {"capacity_kw": 40.0, "efficiency": 1.0}),
            )
            for kind, name, fields in sources:
                source_create(by=operator, site=site, kind=kind, name=name, **fields)
            self.stdout.write("energy  Lagos Fab Site: solar, battery, grid")
        if not SitePowerCap.objects.filter(site=site).exists():
            site_cap_save(by=operator, site=site, max_kw=12.0)
            self.stdout.write("energy  Lagos Fab Site: 12 kW power cap")
        now = timezone.now().replace(minute=0, second=0, microsecond=0)
        hours = [now + timedelta(hours=h) for h in range(-14 * 24, 48)]

        def price(hour: int) -> float:
            peaks = 0.10 * math.exp(-(((hour - 8) / 2) ** 2)) + 0.16 * math.exp(
                -(((hour - 19) / 2.5) ** 2)
            )
            return round(0.22 + peaks - 0.06 * math.exp(-(((hour - 3.5) / 2.5) ** 2)), 4)

        report = rates_store(
            by=operator,
            items=[
                {"site": site.pk, "hour": at.isoformat(), "price": price(at.hour)} for at in hours
            ],
        )
        self.stdout.write(f"energy  {report.stored} hourly grid prices")

    def _seed_fleet(self, orgs: dict[str, Organization]) -> None:
        admin = User.objects.get(email="admin@imewe.test")
        vendor = User.objects.get(email="vendor@imewe.test")
        forge, site = orgs["Forge Fabrication Co"], orgs["Lagos Fab Site"]
        profile = vendor_profile_get_or_create(organization=forge)
        if not profile.certifications:
            profile.certifications = ["ISO 9001"]
            profile.contact_email = "ops@forge.example"
            profile.verification_status = profile.Verification.VERIFIED
            profile.save()
        for spec in DEMO_NODES:
            if FabricationNode.objects.filter(vendor=forge, name=spec["name"]).exists():
                continue
            config = spec.pop("config")
            node = node_register(by=vendor, vendor=forge, site=site, **spec)
            node_decide(node=node, by=admin, approve=True, comment="Demo fleet")
            node_config_save(node=node, by=vendor, config=config, message="Factory settings")
            node_transition(node=node, to=FabricationNode.Status.IDLE, by=vendor, reason="Ready")
            spec["config"] = config
            self.stdout.write(f"node    {node.name}")

    def _seed_twins(self, orgs: dict[str, Organization]) -> None:
        """A twin per demo machine (the vendor's), a spindle and a mixing session (the
        designer's, shared with the engineer for editing)."""
        from apps.twins.models import DigitalTwin
        from apps.twins.services import twin_create, twin_share

        vendor = User.objects.get(email="vendor@imewe.test")
        designer = User.objects.get(email="designer@imewe.test")
        engineer = User.objects.get(email="engineer@imewe.test")
        forge = orgs["Forge Fabrication Co"]
        for node in FabricationNode.objects.filter(vendor=forge).order_by("name"):
            if DigitalTwin.objects.filter(node=node).exists():
                continue
            twin_type = {"cnc_mill": "mill", "fdm_printer": "printer"}.get(node.kind, "other")
            twin_create(
                by=vendor,
                name=f"{node.name} twin",
                twin_type=twin_type,
                node=node,
                organization=forge,
                # words, not codes: the twin page shows tags and properties as they are
                tags=["demo", node.get_kind_display()],
                properties={"kind": node.get_kind_display(), "rated_power_kw": node.rated_power_kw},
            )
        designer_twins = [
            (
                "Spindle S-40",
                "spindle",
                {
                    "spindle": {
                        "max_rpm": 24000,
                        "bearing": {"type": "angular_contact", "preload_n": 300},
                    },
                    "tools": ["end mill 6 mm", "ball nose 3 mm"],
                },
            ),
            ("Cryo powder lab", "mixer", {}),  # twin_create starts a session on the defaults
        ]
        for name, twin_type, properties in designer_twins:
            if DigitalTwin.objects.filter(name=name).exists():
                continue
            twin = twin_create(
                by=designer,
                name=name,
                twin_type=twin_type,
                properties=properties,
                tags=["demo"],
            )
            twin_share(by=designer, twin=twin, level="edit", user=engineer)
            self.stdout.write(f"twin    {twin.name}")
