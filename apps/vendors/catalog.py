"""The one catalogue of fabrication processes and materials: what a node offers and what a
job's part asks for, as codes ("laser_cutting", "aluminium_6061") with human labels.

Plain data, no database: vendors (nodes), jobs (parts, estimates, scheduler), materials (its
stock rows are named by these labels) and migrations all read it, and it lives here because
vendors is the lowest app that needs it. Each entry also knows the free-text spellings people
used before there was a catalogue ("Laser-Cutting", "fused deposition", "Aluminum 6061"), so
old data and hand-typed API input map to codes. A spelling that is not listed ("PLA+") is not
guessed at: it is unknown and reported, because it may well be a different material."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Process:
    code: str
    label: str
    # how the estimates treat it: additive, subtractive, cutting or fixed (time per unit)
    mode: str
    aliases: tuple[str, ...] = ()
    # True for steps that take any material (assembly, inspection)
    any_material: bool = False


@dataclass(frozen=True)
class Material:
    code: str
    label: str
    processes: tuple[str, ...]  # the process codes that work it
    aliases: tuple[str, ...] = ()


PROCESSES: tuple[Process, ...] = (
    Process(
        "fdm",
        "FDM printing",
        "additive",
        (
            "fff",
            "fused deposition",
            "fused deposition modeling",
            "fused deposition modelling",
            "fused filament fabrication",
        ),
    ),
    Process("sla", "SLA printing", "additive", ("stereolithography", "resin printing")),
    Process("sls", "SLS printing", "additive", ("selective laser sintering",)),
    Process("milling", "CNC milling", "subtractive", ("cnc mill", "mill")),
    Process("drilling", "Drilling", "subtractive", ("drill", "cnc drilling")),
    Process("turning", "CNC turning", "subtractive", ("lathe", "cnc lathe")),
    Process("laser_cutting", "Laser cutting", "cutting", ("laser cut", "lasercutting", "laser")),
    Process("assembly", "Assembly", "fixed", ("assembling",), any_material=True),
    Process("inspection", "Inspection", "fixed", ("quality inspection",), any_material=True),
)

_SUBTRACTIVE = ("milling", "drilling", "turning")
_SHEET = ("laser_cutting", "milling", "drilling")
MATERIALS: tuple[Material, ...] = (
    Material("pla", "PLA", ("fdm",), ("polylactic acid",)),
    Material("petg", "PETG", ("fdm",), ("pet g",)),
    Material("abs", "ABS", ("fdm",)),
    Material("tpu", "TPU", ("fdm",)),
    Material("resin", "Resin", ("sla",), ("photopolymer resin", "standard resin")),
    Material("nylon_powder", "Nylon powder", ("sls",), ("pa12", "pa 12", "pa12 powder")),
    Material(
        "aluminium_6061",
        "Aluminium 6061",
        _SUBTRACTIVE,
        ("aluminum 6061", "al 6061", "6061", "6061 t6", "aluminium 6061 t6"),
    ),
    Material("steel", "Steel", _SUBTRACTIVE, ("mild steel",)),
    Material("brass", "Brass", _SUBTRACTIVE),
    Material(
        "cfrp_sheet",
        "CFRP sheet",
        ("milling", "drilling"),
        ("cfrp", "carbon fibre sheet", "carbon fiber sheet"),
    ),
    Material("acrylic", "Acrylic", _SHEET, ("pmma", "plexiglass", "acrylic sheet")),
    Material("plywood", "Plywood", _SHEET, ("ply", "birch plywood")),
)

PROCESS_BY_CODE = {p.code: p for p in PROCESSES}
MATERIAL_BY_CODE = {m.code: m for m in MATERIALS}
PROCESS_CODES = tuple(PROCESS_BY_CODE)
MATERIAL_CODES = tuple(MATERIAL_BY_CODE)


def spelling_key(value: str) -> str:
    """What two spellings of one name share: lower case, '-' and '_' as spaces, spaces
    collapsed ("Laser-Cutting", "laser_cutting", " laser  cutting" are one key)."""
    return " ".join(re.sub(r"[-_]", " ", value.lower()).split())


def _spellings(entries: Iterable[Process | Material]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in entries:
        for spelling in (entry.code, entry.label, *entry.aliases):
            key = spelling_key(spelling)
            assert out.get(key, entry.code) == entry.code, f"{spelling!r} is ambiguous"
            out[key] = entry.code
    return out


_PROCESS_SPELLINGS = _spellings(PROCESSES)
_MATERIAL_SPELLINGS = _spellings(MATERIALS)


def process_code(value: str) -> str | None:
    """The catalogue code `value` names (a code, label or known spelling), or None."""
    return _PROCESS_SPELLINGS.get(spelling_key(value))


def material_code(value: str) -> str | None:
    return _MATERIAL_SPELLINGS.get(spelling_key(value))


def process_label(value: str) -> str:
    """The label of a process code (or of any spelling of it); unknown values as they are."""
    code = process_code(value)
    return PROCESS_BY_CODE[code].label if code else value


def material_label(value: str) -> str:
    code = material_code(value)
    return MATERIAL_BY_CODE[code].label if code else value


def process_choices(*, exclude: Iterable[str] = ()) -> list[tuple[str, str]]:
    skip = set(exclude)
    return [(p.code, p.label) for p in PROCESSES if p.code not in skip]


def material_choices() -> list[tuple[str, str]]:
    return [(m.code, m.label) for m in MATERIALS]


@lru_cache(maxsize=4096)  # the scheduler asks for the same few values for every part and node
def match_key(value: str, *, kind: str) -> str:
    """How the scheduler and estimates compare a node's capability with a part's: by catalogue
    code when the value names one, else by its plain lower-case text (rows written before the
    catalogue, or outside it, still match their own spelling)."""
    code = process_code(value) if kind == "process" else material_code(value)
    return code or " ".join(value.lower().split())


def works(process: str, material: str) -> bool:
    """Whether the catalogue knows `process` (a code) to work `material` (a code)."""
    entry = PROCESS_BY_CODE.get(process)
    if entry is None or material not in MATERIAL_BY_CODE:
        return False
    return entry.any_material or process in MATERIAL_BY_CODE[material].processes


def unknown_message(kind: str, *values: str) -> str:
    """The error for values the catalogue does not know, naming every valid code."""
    codes = PROCESS_CODES if kind == "process" else MATERIAL_CODES
    shown = ", ".join(repr(v if len(v) <= 60 else f"{v[:60]}…") for v in values[:10])
    more = f" and {len(values) - 10} more" if len(values) > 10 else ""
    return (
        f"Unknown {kind} {shown}{more}; use one of the catalogue codes (or their labels): "
        f"{', '.join(codes)}."
    )


def codes_clean(values: list[str], *, kind: str) -> tuple[list[str], list[str]]:
    """(codes, unknown values): each value mapped to its catalogue code, duplicates dropped,
    in catalogue order; values the catalogue does not know are returned apart, in order."""
    to_code = process_code if kind == "process" else material_code
    order = PROCESS_CODES if kind == "process" else MATERIAL_CODES
    codes: set[str] = set()
    unknown: list[str] = []
    for value in values:
        code = to_code(value)
        if code is None:
            unknown.append(value)
        else:
            codes.add(code)
    return [c for c in order if c in codes], unknown


def codes_keeping_unknown(values: list[object], *, kind: str) -> list[object]:
    """A stored list rewritten to catalogue codes, nothing lost: known spellings become their
    codes (catalogue order, no duplicates), values the catalogue does not know follow as they
    were, for the vendor to see flagged (`node_capability_problems`)."""
    texts = [v for v in values if isinstance(v, str) and v.strip()]
    codes, unknown = codes_clean(texts, kind=kind)
    kept: list[object] = []
    for value in [*unknown, *(v for v in values if v not in texts)]:
        if value not in kept:
            kept.append(value)
    return [*codes, *kept]


def node_capability_problems(
    *, processes: list[str], materials: list[str], build_mm: tuple[float, float, float]
) -> list[str]:
    """Why a node with these capabilities can take no job, or is partly unusable, in words
    for its vendor; empty when it can take some job. Values outside the catalogue (kept from
    before it) are named, since no job asks for them."""
    problems: list[str] = []
    process_codes, odd_processes = codes_clean(list(processes), kind="process")
    material_codes, odd_materials = codes_clean(list(materials), kind="material")
    for value in odd_processes:
        problems.append(f"“{value}” is not a catalogue process; no job asks for it.")
    for value in odd_materials:
        problems.append(f"“{value}” is not a catalogue material; no job asks for it.")
    if not process_codes:
        problems.append("It offers no catalogue process, so it can take no job.")
    elif not material_codes:
        problems.append("It works no catalogue material, so it can take no job.")
    elif not any(works(p, m) for p in process_codes for m in material_codes):
        wanted = [m.label for m in MATERIALS if any(works(p, m.code) for p in process_codes)]
        problems.append(
            "None of its processes works any of its materials, so it can take no job"
            + (f" (its processes work {', '.join(wanted)})." if wanted else ".")
        )
    if min(build_mm) <= 0:
        problems.append("Its build volume is zero, so no part fits.")
    return problems


def _words(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}"


def pairing_problems(*, processes: Iterable[str], materials: Iterable[str]) -> dict[str, str]:
    """What is wrong with processes and materials chosen together (a playbook's, a listing's),
    by "processes" / "materials", in words: each material must be one a chosen process works,
    and each process must work one of the chosen materials (steps that take any material,
    like assembly, always fit). Codes only; nothing to say when either side is empty."""
    process_codes = [p for p in processes if p in PROCESS_BY_CODE]
    material_codes = [m for m in materials if m in MATERIAL_BY_CODE]
    if not process_codes or not material_codes:
        return {}
    problems: dict[str, str] = {}
    lonely = [m for m in material_codes if not any(works(p, m) for p in process_codes)]
    if lonely:
        names = [MATERIAL_BY_CODE[m].label for m in lonely]
        able = [
            p.label
            for p in PROCESSES
            if not p.any_material and any(works(p.code, m) for m in lonely)
        ]
        problems["materials"] = f"No chosen process works {_words(names)}" + (
            f"; choose {_words(able)} too, or leave {'it' if len(lonely) == 1 else 'them'} out."
            if able
            else "."
        )
    idle = [
        p
        for p in process_codes
        if not PROCESS_BY_CODE[p].any_material and not any(works(p, m) for m in material_codes)
    ]
    if idle:
        problems["processes"] = " ".join(
            f"{PROCESS_BY_CODE[code].label} works none of the chosen materials: it works "
            f"{_words([m.label for m in MATERIALS if works(code, m.code)])}."
            for code in idle
        )
    return problems


def pair_problem(process: str, material: str) -> str | None:
    """Why one part's process cannot work its material, in words; None when it can, or when
    either is not in the catalogue (that is reported as unknown, by `unknown_message`)."""
    process_key, material_key = process_code(process), material_code(material)
    if process_key is None or material_key is None or works(process_key, material_key):
        return None
    able = [m.label for m in MATERIALS if works(process_key, m.code)]
    return (
        f"{PROCESS_BY_CODE[process_key].label} does not work "
        f"{MATERIAL_BY_CODE[material_key].label}; it works {', '.join(able)}."
    )


def materials_by_process(*, exclude: Iterable[str] = ()) -> dict[str, list[str]]:
    """The material codes each process works, for pages whose material choices follow the
    chosen process (static/js/job_submit.js, static/js/listing_catalogue.js)."""
    skip = set(exclude)
    return {
        p.code: [m.code for m in MATERIALS if works(p.code, m.code)]
        for p in PROCESSES
        if p.code not in skip
    }
