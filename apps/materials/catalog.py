"""The standard material catalog (installed by migration 0002) and unit conversions. Plain data
and arithmetic: no database access, so migrations and the forecasting code can use it.

Densities and prices per kg are those of apps/jobs/estimates.py MATERIALS, so stock, usage and
the job estimates agree; the other specs are typical values the simulations use (tensile
strength, Young's modulus, the highest temperature the material is used at)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from apps.jobs.estimates import MATERIALS
from apps.vendors.catalog import material_code

QUANTITY = Decimal("0.001")  # stock is kept to a thousandth of its unit
CENT = Decimal("0.01")
FIXED_GRAMS = {"g": Decimal("1"), "kg": Decimal("1000")}
# units whose weight depends on the item (a sheet, a bar, a metre): the catalog says how much
PER_ITEM_UNITS = frozenset({"sheet", "bar", "m"})
SPEC_FIELDS: dict[str, tuple[str, bool]] = {
    # key: (label, required)
    "density_g_cm3": ("Density (g/cm³)", True),
    "tensile_strength_mpa": ("Tensile strength (MPa)", False),
    "youngs_modulus_gpa": ("Young's modulus (GPa)", False),
    "max_service_temp_c": ("Highest service temperature (°C)", False),
}

# Named by the labels of the process/material catalogue (apps/vendors/catalog.py): parts and
# nodes carry its codes, and a part's code finds its stock row through the label.
# name, category, tensile MPa, modulus GPa, max service temperature °C (density, price: MATERIALS)
_STANDARD: list[tuple[str, str, float, float, float]] = [
    ("PLA", "filament", 50, 3.5, 55),
    ("PETG", "filament", 50, 2.1, 70),
    ("ABS", "filament", 40, 2.3, 85),
    ("TPU", "filament", 35, 0.03, 80),
    ("Resin", "resin", 55, 2.5, 60),
    ("Nylon powder", "powder", 48, 1.7, 150),
    ("Aluminium 6061", "metal", 310, 69, 200),
    ("Steel", "metal", 400, 200, 500),
    ("Brass", "metal", 340, 100, 300),
    ("CFRP sheet", "composite", 600, 70, 120),
    ("Acrylic", "sheet", 70, 3.2, 80),
    ("Plywood", "sheet", 40, 9, 100),
]


def normalise_name(name: str) -> str:
    """How a part's free-text material is matched to the catalog (as the estimates do)."""
    return " ".join(name.lower().split())


def standard_materials() -> list[dict[str, Any]]:
    """The standard catalog rows, priced per kg in the platform currency."""
    rows = []
    for name, category, tensile, modulus, max_temp in _STANDARD:
        density, price = MATERIALS[material_code(name) or name]
        rows.append(
            {
                "name": name,
                "category": category,
                "specs": {
                    "density_g_cm3": density,
                    "tensile_strength_mpa": tensile,
                    "youngs_modulus_gpa": modulus,
                    "max_service_temp_c": max_temp,
                },
                "unit": "kg",
                "unit_cost": Decimal(str(price)).quantize(CENT),
                "lead_time_days": 7 if category in ("filament", "resin", "powder") else 14,
                "min_order_qty": Decimal("1.000"),
            }
        )
    return rows


def install_standard_catalog(material_model: Any, currency: str) -> int:
    """Adds the standard materials that are missing (by name, case-insensitively); returns how
    many were added. Takes the model class so a migration can pass its historical model."""
    added = 0
    for row in standard_materials():
        if not material_model.objects.filter(name__iexact=row["name"]).exists():
            material_model.objects.create(currency=currency, **row)
            added += 1
    return added


def grams_per_unit(
    unit: str, *, density_g_cm3: float | None, per_item_g: Decimal | None
) -> Decimal | None:
    """Grams in one unit of stock, or None when it cannot be known (a sheet without a weight,
    a litre without a density)."""
    if unit in FIXED_GRAMS:
        return FIXED_GRAMS[unit]
    if unit == "l":
        if density_g_cm3 is None or density_g_cm3 <= 0:
            return None
        return Decimal(str(density_g_cm3)) * 1000
    if unit in PER_ITEM_UNITS and per_item_g is not None and per_item_g > 0:
        return Decimal(per_item_g)
    return None


def to_quantity(value: Decimal | float) -> Decimal:
    return Decimal(str(value)).quantize(QUANTITY, rounding=ROUND_HALF_UP)


# a spool's colour in words: the nearest of these (by RGB distance) names it on pages
_COLOUR_NAMES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("black", (0, 0, 0)),
    ("dark grey", (64, 64, 64)),
    ("grey", (128, 128, 128)),
    ("light grey", (192, 192, 192)),
    ("white", (255, 255, 255)),
    ("red", (220, 30, 40)),
    ("dark red", (128, 0, 0)),
    ("orange", (255, 140, 0)),
    ("yellow", (250, 220, 30)),
    ("brown", (140, 80, 30)),
    ("beige", (225, 200, 160)),
    ("green", (30, 170, 60)),
    ("dark green", (0, 90, 30)),
    ("light green", (140, 230, 120)),
    ("teal", (0, 128, 128)),
    ("cyan", (0, 200, 220)),
    ("light blue", (120, 180, 240)),
    ("blue", (30, 80, 220)),
    ("navy", (0, 0, 110)),
    ("purple", (120, 40, 160)),
    ("magenta", (220, 0, 200)),
    ("pink", (250, 150, 190)),
)


def colour_words(colour_hex: str) -> str:
    """ "#e11d48" -> "red": the nearest named colour (pages show the swatch and the hex too)."""
    try:
        rgb = tuple(int(colour_hex.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        return colour_hex
    if len(colour_hex.lstrip("#")) != 6:
        return colour_hex
    return min(
        _COLOUR_NAMES, key=lambda item: sum((a - b) ** 2 for a, b in zip(item[1], rgb, strict=True))
    )[0]
