"""The materials the mixer knows: their breaking behaviour, heat and transition points at 20 C,
and where each figure comes from (the package docstring says how the laws use them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MaterialProps:
    label: str
    kind: str  # "polymer", "composite" or "metal"
    density_kg_m3: float
    bond_work_index_kwh_t: float  # effective, at 20 C
    glass_transition_c: float | None
    melting_c: float  # or flow point (amorphous polymers), decomposition onset (thermosets)
    ductile_brittle_c: float | None  # a brittle-ductile transition below Tg, or a metal's DBTT
    specific_heat_j_kg_k: float
    ductile_factor: float  # how many times the work index rises from brittle to ductile
    source: str

    @property
    def brittle_point_c(self) -> float | None:
        """Below this temperature the material fractures brittle (None: it never does)."""
        if self.ductile_brittle_c is not None:
            return self.ductile_brittle_c
        return self.glass_transition_c


MATERIALS: dict[str, MaterialProps] = {
    "PLA": MaterialProps(
        label="PLA",
        kind="polymer",
        density_kg_m3=1240.0,
        bond_work_index_kwh_t=200.0,
        glass_transition_c=60.0,
        melting_c=170.0,
        ductile_brittle_c=None,
        specific_heat_j_kg_k=1800.0,
        ductile_factor=5.0,
        source="Semi-crystalline grades melt at 150-180 C; glassy and brittle below Tg.",
    ),
    "ABS": MaterialProps(
        label="ABS",
        kind="polymer",
        density_kg_m3=1050.0,
        bond_work_index_kwh_t=900.0,
        glass_transition_c=105.0,
        melting_c=220.0,
        ductile_brittle_c=-80.0,
        specific_heat_j_kg_k=1400.0,
        ductile_factor=5.0,
        source="Amorphous: 220 C is its flow point. Its polybutadiene phase (Tg about -80 C) "
        "keeps it tough until that is frozen.",
    ),
    "PETG": MaterialProps(
        label="PETG",
        kind="polymer",
        density_kg_m3=1270.0,
        bond_work_index_kwh_t=800.0,
        glass_transition_c=80.0,
        melting_c=220.0,
        ductile_brittle_c=-40.0,
        specific_heat_j_kg_k=1150.0,
        ductile_factor=5.0,
        source="Amorphous copolyester: 220 C is its flow point. The brittle-ductile transition "
        "is approximate (notched impact).",
    ),
    "PA12": MaterialProps(
        label="PA12 (nylon powder)",
        kind="polymer",
        density_kg_m3=1010.0,
        bond_work_index_kwh_t=1000.0,
        glass_transition_c=45.0,
        melting_c=178.0,
        ductile_brittle_c=-40.0,
        specific_heat_j_kg_k=1700.0,
        ductile_factor=5.0,
        source="Dry Tg; notched impact toughness drops near -40 C; SLS grade melts at 178 C.",
    ),
    "PEEK": MaterialProps(
        label="PEEK",
        kind="polymer",
        density_kg_m3=1300.0,
        bond_work_index_kwh_t=1200.0,
        glass_transition_c=143.0,
        melting_c=343.0,
        ductile_brittle_c=-60.0,
        specific_heat_j_kg_k=1340.0,
        ductile_factor=5.0,
        source="Tough at room temperature. The brittle point is approximate (its beta "
        "relaxation); it is milled cryogenically.",
    ),
    "CFRP": MaterialProps(
        label="CFRP (carbon fibre / epoxy)",
        kind="composite",
        density_kg_m3=1550.0,
        bond_work_index_kwh_t=300.0,
        glass_transition_c=150.0,
        melting_c=300.0,
        ductile_brittle_c=None,
        specific_heat_j_kg_k=1000.0,
        ductile_factor=2.0,
        source="Cured epoxy Tg is 120-180 C. A thermoset does not melt: 300 C is where the "
        "matrix starts to decompose. Brittle fibres keep the ductile factor small.",
    ),
    "aluminium_6061": MaterialProps(
        label="Aluminium 6061",
        kind="metal",
        density_kg_m3=2700.0,
        bond_work_index_kwh_t=600.0,
        glass_transition_c=None,
        melting_c=582.0,
        ductile_brittle_c=None,
        specific_heat_j_kg_k=896.0,
        ductile_factor=1.0,
        source="FCC: there is no ductile-brittle transition. 582 C is the solidus.",
    ),
    "steel_316L": MaterialProps(
        label="Stainless steel 316L",
        kind="metal",
        density_kg_m3=8000.0,
        bond_work_index_kwh_t=1200.0,
        glass_transition_c=None,
        melting_c=1375.0,
        ductile_brittle_c=None,
        specific_heat_j_kg_k=500.0,
        ductile_factor=1.0,
        source="Austenitic (FCC): there is no ductile-brittle transition, which is why it is "
        "used at cryogenic temperatures. 1375 C is the solidus.",
    ),
    "steel_4140": MaterialProps(
        label="Steel 4140 (ferritic)",
        kind="metal",
        density_kg_m3=7850.0,
        bond_work_index_kwh_t=1200.0,
        glass_transition_c=None,
        melting_c=1416.0,
        ductile_brittle_c=-60.0,
        specific_heat_j_kg_k=475.0,
        ductile_factor=4.0,
        source="Quenched and tempered (BCC). The Charpy transition is -40 to -80 C, depending "
        "on the temper. 1416 C is the solidus.",
    ),
}
