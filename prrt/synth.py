"""Synthetic raw exports in the contract format (CONTRACT section 2), at any scale.

`generate_export(n, out_dir)` writes the seven export files for ``n`` synthetic
177Lu-DOTATATE patients treated at several centres. Everything is vectorised: a
chunk of patients (``CHUNK_PATIENTS``) is simulated as numpy arrays (per-cycle,
per-sample and per-assessment rows come from masks over small fixed-width
matrices and ``np.nonzero``/``np.repeat``), turned into Arrow string columns and
appended to the CSV files by Arrow's C++ CSV writer, so memory stays bounded by
one chunk whatever ``n`` is.

The clinical picture follows the bundled paper (raw/ and shared/seed): 1-7 cycles
of 3.7-7.4 GBq every 6-8 weeks, monthly labs from a baseline 1-14 days before the
first cycle to ~6 months after the last, mild haematological declines (CTCAE
grade 0-2, rarely 3-4), ECOG/KPS before each cycle and 3-5 and (often) ~6 months after the last
(the warehouse's "post" is the first >= 90 days after the last cycle, contract section 4 v2),
a baseline scan (NE, with its sum of diameters) 1-4 weeks before the first cycle, then
RECIST every ~8 weeks and 3 and 6 months after therapy (best response ~10% CR,
40% PR, 35% SD, 15% PD), Weibull overall survival (median ~3 years) with
administrative censoring at ``cutoff`` (never after today).

Clean mode writes plain UTF-8, comma, LF, ISO dates, canonical units. ``messy=True``
writes the same patients (the underlying data do not depend on ``messy``) in the
variations the contract tolerates -- chosen per file (BOM, CRLF, ';' with decimal
commas, DD/MM/YYYY, header case/padding, yes/no spellings) and per centre
(activity in GBq/MBq/mCi, lab units such as Hb g/L or mmol/L, creatinine mg/dL,
counts per mm3, with values and reference limits converted consistently) -- and
injects a small known number of bad rows of each kind the contract names. What was
injected, where (1-based line numbers, header = line 1) and why is written to
``_expected_rejections.json`` next to the files, so a test can check the pipeline
rejects exactly those rows and accepts everything else.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

# --------------------------------------------------------------------------- format

COLUMNS: dict[str, tuple[str, ...]] = {
    "patients.csv": (
        "patient_id", "full_name", "birth_date", "sex", "primary_site", "tumour_grade",
        "ki67_percent", "prior_surgery", "prior_chemotherapy", "prior_radiotherapy",
        "hypertension", "diabetes", "baseline_imaging", "krenning_score", "suvmax",
    ),
    "metastases.csv": ("patient_id", "site"),
    "cycles.csv": (
        "patient_id", "cycle_number", "administration_date", "activity", "activity_unit",
        "amino_acid_infusion",
    ),
    "labs.csv": ("patient_id", "sample_date", "analyte", "value", "unit", "lln", "uln"),
    "performance_status.csv": ("patient_id", "assessment_date", "ecog", "kps"),
    "tumour_assessments.csv": (
        "patient_id", "assessment_date", "modality", "recist_response", "sum_of_diameters_mm",
    ),
    "follow_up.csv": ("patient_id", "last_contact_date", "vital_status", "death_date"),
}
FILES = tuple(COLUMNS)
EXPECTED_REJECTIONS_FILE = "_expected_rejections.json"

CHUNK_PATIENTS = 10_000  # patients simulated per chunk (part of the seed -> bytes mapping)
SLICE_ROWS = 1_000_000  # rows stringified and written at a time

DEFAULT_CUTOFF = date(2026, 6, 30)  # data cut-off; clamped to today

_EPOCH = date(1970, 1, 1)


def _day(d: date) -> int:
    return (d - _EPOCH).days


START_FIRST = _day(date(2015, 1, 1))  # first cycles spread over 2015-2024
START_LAST = _day(date(2024, 12, 31))
FUTURE_FIRST = _day(date(2090, 1, 1))  # "date after today" injections: 2090-2099

PRIMARY_SITES = ("pancreas", "gi", "lung", "unknown_primary", "other")
PRIMARY_P = (0.38, 0.36, 0.10, 0.11, 0.05)
GRADES = ("G1", "G2", "G3")
IMAGING = ("tc99m_octreotide", "ga68_dotatate_pet")
MET_SITES = ("liver", "lymph_node", "bone", "kidney", "uterus", "skin", "lung", "peritoneum", "other")
MET_P = (0.78, 0.45, 0.22, 0.03, 0.03, 0.02, 0.08, 0.12, 0.05)
RESPONSES = ("CR", "PR", "SD", "PD", "NE")
BEST_P = (0.10, 0.40, 0.35, 0.15)
MODALITIES = ("ct", "mri")
VITAL = ("alive", "dead")
SEXES = ("M", "F")

ANALYTES = (
    "hemoglobin", "wbc", "platelets", "neutrophils", "lymphocytes", "creatinine",
    "ast", "alt", "bilirubin", "albumin", "chromogranin_a",
)
HB, WBC, PLT, NEUT, LYMPH, CREAT, AST, ALT, BILI, ALB, CGA = range(11)

# Unit spellings the generator writes, per quantity: (unit, multiplier to canonical, decimals).
# The first is canonical. Multipliers mirror dbt/seeds/unit_conversions.csv (a test checks).
_COUNT_UNITS = (("10^9/L", 1.0, 2), ("10^3/uL", 1.0, 2), ("/mm3", 0.001, 0), ("cells/mm3", 0.001, 0))
UNIT_OPTIONS: dict[str, tuple[tuple[str, float, int], ...]] = {
    "activity": (("GBq", 1.0, 2), ("MBq", 0.001, 0), ("mCi", 0.037, 1)),
    "hemoglobin": (("g/dL", 1.0, 1), ("g/L", 0.1, 0), ("mmol/L", 1.6114, 2)),
    "wbc": _COUNT_UNITS,
    "platelets": (("10^9/L", 1.0, 0), ("10^3/uL", 1.0, 0), ("/mm3", 0.001, 0), ("cells/mm3", 0.001, 0)),
    "neutrophils": _COUNT_UNITS,
    "lymphocytes": _COUNT_UNITS,
    "creatinine": (("umol/L", 1.0, 0), ("mg/dL", 88.42, 2), ("µmol/L", 1.0, 0)),
    "ast": (("U/L", 1.0, 0), ("IU/L", 1.0, 0)),
    "alt": (("U/L", 1.0, 0), ("IU/L", 1.0, 0)),
    "bilirubin": (("umol/L", 1.0, 1), ("mg/dL", 17.1, 2)),
    "albumin": (("g/dL", 1.0, 1), ("g/L", 0.1, 0)),
    "chromogranin_a": (("ng/mL", 1.0, 0), ("ug/L", 1.0, 0)),
}
UNKNOWN_LAB_UNITS = ("%", "mmol/mol", "mEq/L")
UNKNOWN_ACTIVITY_UNITS = ("mSv", "mg", "Gy")
BAD_DATES = ("2021-02-30", "31/02/2021", "2020-13-01", "12/25/2020", "unknown", "next week")

# Reference ranges a centre may print next to each result (canonical units), per analyte:
# (lln F, uln F, lln M, uln M). Set 0 = dbt/seeds/lab_reference_ranges.csv, set 1 = a local lab.
_REF = np.array([
    # hemoglobin, wbc, platelets, neutrophils, lymphocytes, creatinine, ast, alt, bilirubin, albumin, cga
    [[12.0, 16.0, 13.0, 17.0], [4.0, 11.0, 4.0, 11.0], [150, 400, 150, 400], [1.8, 7.5, 1.8, 7.5],
     [1.0, 4.0, 1.0, 4.0], [45, 90, 60, 110], [0, 40, 0, 40], [0, 40, 0, 40], [0, 21, 0, 21],
     [3.5, 5.0, 3.5, 5.0], [0, 100, 0, 100]],
    [[11.5, 15.5, 13.5, 17.5], [3.8, 10.5, 3.8, 10.5], [140, 400, 140, 400], [1.5, 7.0, 1.5, 7.0],
     [1.1, 3.5, 1.1, 3.5], [49, 90, 64, 104], [0, 35, 0, 35], [0, 35, 0, 35], [3, 20, 3, 20],
     [3.4, 4.8, 3.4, 4.8], [0, 98, 0, 98]],
], dtype=np.float64)

# Boolean spellings the contract accepts, as (no, yes) pairs; clean mode uses the first.
BOOL_STYLES = (("no", "yes"), ("n", "y"), ("0", "1"), ("-", "+"))

_FIRST_F = (
    "Maryam", "Fatemeh", "Zahra", "Sara", "Anna", "Maria", "Sophie", "Emma", "Laura", "Elena",
    "Aisha", "Leila", "Nina", "Julia", "Clara", "Ines", "Hana", "Mina", "Olivia", "Chloe",
    "Ingrid", "Greta", "Lucia", "Noor", "Yasmin", "Rosa", "Eva", "Marta", "Lena", "Amira",
)
_FIRST_M = (
    "Ali", "Reza", "Hossein", "Mohammad", "Amir", "John", "Peter", "Lukas", "Jan", "Marco",
    "David", "Omar", "Karim", "Thomas", "Paul", "Felix", "Hugo", "Ivan", "Mehdi", "Samuel",
    "Erik", "Lars", "Pablo", "Diego", "Yusuf", "Tariq", "Noah", "Adam", "Elias", "Victor",
)
_LAST = (
    "Ahmadi", "Hosseini", "Karimi", "Rahimi", "Moradi", "Jafari", "Rezaei", "Sadeghi", "Smith",
    "Jones", "Muller", "Schmidt", "Rossi", "Bianchi", "Garcia", "Martinez", "Dubois", "Laurent",
    "Jansen", "De Vries", "Novak", "Horvat", "Nielsen", "Larsen", "Kowalski", "Nowak", "Silva",
    "Santos", "Papadopoulos", "Yilmaz", "Kaya", "Haddad", "Khoury", "Cohen", "Levi", "Berg",
    "Lindqvist", "Virtanen", "Murphy", "O'Brien",
)


@dataclass(frozen=True)
class FileFormat:
    """How one file is written (all defaults = the clean, canonical form)."""

    bom: bool = False
    crlf: bool = False
    delimiter: str = ","
    decimal_comma: bool = False
    date_format: str = "iso"  # iso | dmy
    header_style: str = "exact"  # exact | upper | padded | title | mixed

    @property
    def eol(self) -> str:
        return "\r\n" if self.crlf else "\n"

    def header(self, columns: tuple[str, ...]) -> str:
        styles = ("upper", "padded", "title")
        names = []
        for i, name in enumerate(columns):
            style = styles[i % 3] if self.header_style == "mixed" else self.header_style
            if style == "upper":
                name = name.upper()
            elif style == "padded":
                name = f" {name} "
            elif style == "title":
                name = name.title()
            names.append(name)
        return self.delimiter.join(names) + self.eol

    def date(self, day: int) -> str:
        d = date.fromordinal(_EPOCH.toordinal() + int(day))
        return d.isoformat() if self.date_format == "iso" else d.strftime("%d/%m/%Y")

    def number(self, x: float, decimals: int) -> str:
        text = f"{x:.{max(decimals, 0)}f}"
        return text.replace(".", ",") if self.decimal_comma else text


@dataclass
class _Config:
    """Everything decided once per export: formats per file, units and spellings per centre."""

    n_patients: int
    seed: int
    sites: int
    messy: bool
    cutoff: int  # day number
    formats: dict[str, FileFormat]
    unit_choice: np.ndarray  # (sites, quantity) -> index into UNIT_OPTIONS[quantity]
    unit_lower: np.ndarray  # (sites,) -> write unit spellings in lower case
    bool_style: np.ndarray  # (sites,) -> index into BOOL_STYLES
    ref_set: np.ndarray  # (sites,) -> -1 no lln/uln printed, else index into _REF

    def describe(self) -> dict:
        quantities = list(UNIT_OPTIONS)
        return {
            "formats": {f: asdict(fmt) for f, fmt in self.formats.items()},
            "site_units": {
                _site_label(s): {
                    q: _unit_spelling(UNIT_OPTIONS[q][self.unit_choice[s, i]][0], self.unit_lower[s])
                    for i, q in enumerate(quantities)
                }
                for s in range(self.sites)
            },
            "site_boolean_spelling": {
                _site_label(s): "/".join(BOOL_STYLES[self.bool_style[s]]) for s in range(self.sites)
            },
            "site_prints_reference_range": {_site_label(s): bool(self.ref_set[s] >= 0) for s in range(self.sites)},
        }


def _site_label(site: int) -> str:
    return f"S{site + 1:02d}"


def _unit_spelling(unit: str, lower: bool) -> str:
    return unit.lower() if lower else unit


def _make_config(n_patients: int, seed: int, sites: int, messy: bool, cutoff: int) -> _Config:
    quantities = list(UNIT_OPTIONS)
    ref_set = np.where(np.arange(sites) % 2 == 0, (np.arange(sites) // 2) % 2, -1)
    if not messy:
        return _Config(
            n_patients, seed, sites, messy, cutoff,
            formats={f: FileFormat() for f in FILES},
            unit_choice=np.zeros((sites, len(quantities)), dtype=np.int64),
            unit_lower=np.zeros(sites, dtype=bool),
            bool_style=np.zeros(sites, dtype=np.int64),
            ref_set=ref_set,
        )
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1_000_001,)))
    n_files = len(FILES)

    def some_files() -> set[str]:
        # each variation in at least two files and never in all of them
        k = int(rng.integers(2, n_files - 1))
        return {FILES[i] for i in rng.permutation(n_files)[:k]}

    bom, crlf, semi, dmy = some_files(), some_files(), some_files(), some_files()
    styles = rng.choice(["exact", "upper", "padded", "title", "mixed"], n_files)
    perm = rng.permutation(n_files)
    styles[perm[0]], styles[perm[1]], styles[perm[2]] = "upper", "padded", "mixed"
    formats = {
        f: FileFormat(
            bom=f in bom, crlf=f in crlf, delimiter=";" if f in semi else ",",
            decimal_comma=f in semi, date_format="dmy" if f in dmy else "iso",
            header_style=str(styles[i]),
        )
        for i, f in enumerate(FILES)
    }
    # per centre: unit k of quantity q is used by centre s when (s + offset_q) % len == k, so
    # with as many centres as spellings every spelling appears somewhere
    offsets = rng.integers(0, 4, len(quantities))
    lens = np.array([len(UNIT_OPTIONS[q]) for q in quantities])
    unit_choice = (np.arange(sites)[:, None] + offsets[None, :]) % lens[None, :]
    unit_lower = rng.random(sites) < 0.3
    bool_style = (np.arange(sites) + int(rng.integers(0, 4))) % len(BOOL_STYLES)
    return _Config(n_patients, seed, sites, messy, cutoff, formats, unit_choice, unit_lower, bool_style, ref_set)


# --------------------------------------------------------------------------- columns


@dataclass
class _Col:
    """A typed column of one file (numpy), turned into strings per slice."""

    kind: str  # date | float | int | cat | str
    values: np.ndarray | pa.Array
    valid: np.ndarray | None = None  # False = empty cell
    labels: tuple[str, ...] | pa.Array = ()  # cat: value of each code

    def slice(self, lo: int, hi: int) -> _Col:
        return _Col(self.kind, self.values[lo:hi], None if self.valid is None else self.valid[lo:hi], self.labels)

    def strings(self, fmt: FileFormat) -> pa.Array:
        mask = None if self.valid is None else ~self.valid
        if self.kind == "str":
            arr = self.values if isinstance(self.values, pa.Array) else pa.array(self.values, pa.string())
            return arr if mask is None else pc.if_else(pa.array(mask), pa.nulls(len(arr), pa.string()), arr)
        if self.kind == "cat":
            codes = pa.array(self.values.astype(np.int32), mask=mask)
            labels = self.labels if isinstance(self.labels, pa.Array) else pa.array(self.labels, pa.string())
            return labels.take(codes)
        if self.kind == "date":
            days = pa.array(self.values.astype(np.int32), mask=mask).view(pa.date32())
            if fmt.date_format == "iso":
                return pc.cast(days, pa.string())
            return pc.strftime(days, format="%d/%m/%Y")
        if self.kind == "int":
            return pc.cast(pa.array(self.values.astype(np.int64), mask=mask), pa.string())
        if self.kind == "float":
            text = pc.cast(pa.array(self.values.astype(np.float64), mask=mask), pa.string())
            return pc.replace_substring(text, ".", ",") if fmt.decimal_comma else text
        raise ValueError(self.kind)


def _round(x: np.ndarray, decimals: np.ndarray | int) -> np.ndarray:
    scale = np.power(10.0, decimals)
    return np.round(x * scale) / scale


# --------------------------------------------------------------------------- simulation


@dataclass
class _Chunk:
    """One chunk of simulated patients: per-file typed columns plus row context."""

    columns: dict[str, dict[str, _Col]]
    context: dict[str, dict[str, np.ndarray]]  # per file, arrays aligned with its rows
    n_rows: dict[str, int]


WEIBULL_SHAPE = 1.15
WEIBULL_SCALE_DAYS = 1780.0  # with the hazard ratios below: cohort median OS ~ 36 months
HR_BEST = np.array([0.45, 0.75, 1.0, 2.6])  # CR, PR, SD, PD


def _simulate(rng: np.random.Generator, cfg: _Config, site: np.ndarray, local_no: np.ndarray) -> _Chunk:
    n = len(site)
    rows = np.arange(n)
    cutoff = cfg.cutoff

    # ---- patients
    female = rng.random(n) < 0.5
    age_years = np.clip(rng.normal(61.0, 11.0, n), 25.05, 85.9)
    start = rng.integers(START_FIRST, min(START_LAST, cutoff - 180) + 1, n)
    birth = start - np.floor(age_years * 365.2425).astype(np.int64)
    primary = rng.choice(len(PRIMARY_SITES), n, p=PRIMARY_P)
    grade = rng.choice(4, n, p=(0.35, 0.47, 0.12, 0.06))  # 3 = not reported
    ki_lo = np.array([0.5, 3.0, 21.0, 0.5])[grade]
    ki_hi = np.array([2.9, 20.0, 60.0, 30.0])[grade]
    ki67 = np.round(rng.uniform(ki_lo, ki_hi), 1)
    ki67_valid = ((grade < 3) | (rng.random(n) < 0.5)) & (rng.random(n) > 0.05)
    history_p = np.array([0.60, 0.45, 0.12, 0.30, 0.20])  # surgery, chemo, radio, hypertension, diabetes
    history = rng.random((n, 5)) < history_p
    history_valid = rng.random((n, 5)) > 0.01
    year_frac = (start - START_FIRST) / (START_LAST - START_FIRST)
    pet = rng.random(n) < 0.3 + 0.5 * year_frac
    krenning = rng.choice([2, 3, 4], n, p=(0.15, 0.50, 0.35))
    suvmax = np.round(np.clip(np.exp(rng.normal(np.log(22.0), 0.5, n)), 4.0, 150.0), 1)
    suv_valid = pet & (rng.random(n) > 0.05)
    first = np.where(female, rng.integers(0, len(_FIRST_F), n), len(_FIRST_F) + rng.integers(0, len(_FIRST_M), n))
    last = rng.integers(0, len(_LAST), n)

    # ---- metastases (at least one site; uterus only in women)
    met = rng.random((n, len(MET_SITES))) < np.array(MET_P)
    met[:, 4] &= female
    met[~met.any(axis=1), 0] = True
    liver = met[:, 0]

    # ---- outcome drivers
    best = rng.choice(4, n, p=BEST_P)
    ecog0 = rng.choice(4, n, p=(0.25, 0.42, 0.25, 0.08))
    planned = rng.choice(7, n, p=(0.06, 0.09, 0.13, 0.42, 0.12, 0.10, 0.08)) + 1
    planned = np.where(best == 3, np.minimum(planned, rng.integers(1, 4, n)), planned)  # PD stops early
    cyc_off = np.zeros((n, 7), dtype=np.int64)
    cyc_off[:, 1:] = np.cumsum(rng.integers(42, 57, (n, 6)), axis=1)

    hr = HR_BEST[best] * np.where(ecog0 >= 2, 1.6, 1.0)
    surv = WEIBULL_SCALE_DAYS * (-np.log(1.0 - rng.random(n)) / hr) ** (1.0 / WEIBULL_SHAPE)
    surv = np.maximum(np.round(surv).astype(np.int64), rng.integers(10, 40, n))  # death >= 10 d after C1
    lost = rng.random(n) < 0.03
    lost_at = np.where(lost, rng.integers(90, 2500, n), np.iinfo(np.int64).max // 4)
    admin = cutoff - start
    end = np.minimum(np.minimum(surv, lost_at), admin)  # data strictly before day `end`
    dead = surv <= np.minimum(lost_at, admin)

    # ---- cycles
    cyc_valid = (np.arange(7)[None, :] < planned[:, None]) & (cyc_off < end[:, None])
    n_cyc = cyc_valid.sum(axis=1)
    last_off = cyc_off[rows, n_cyc - 1]
    full_dose = rng.random(n) < 0.55
    base_act = np.where(full_dose, 7.4, rng.uniform(3.7, 7.4, n))
    activity = _round(np.clip(base_act[:, None] * rng.uniform(0.97, 1.0, (n, 7)), 3.7, 7.4), 2)
    amino = rng.random((n, 7)) < 0.96
    cp, cj = np.nonzero(cyc_valid)

    # ---- labs: monthly samples from baseline to ~6 months after the last cycle
    n_lab_cols = 24
    lab_off = np.empty((n, n_lab_cols), dtype=np.int64)
    lab_off[:, 0] = -rng.integers(1, 15, n)
    lab_off[:, 1:] = lab_off[:, :1] + np.cumsum(rng.integers(26, 36, (n, n_lab_cols - 1)), axis=1)
    lab_end = np.minimum(last_off + rng.integers(150, 211, n), end - 1)
    lp, lj = np.nonzero(lab_off <= lab_end[:, None])
    t = lab_off[lp, lj].astype(np.float64)
    n_samples = len(lp)

    t_nadir = (last_off + 35).astype(np.float64)[lp]
    resid = rng.uniform(0.3, 0.7, n)[lp]
    ramp = np.clip(t / t_nadir, 0.0, 1.0) ** 0.8
    after = t > t_nadir
    decline = np.where(after, resid + (1 - resid) * np.exp(-np.maximum(t - t_nadir, 0) / 90.0), ramp)
    cumulative = np.clip(t / t_nadir, 0.0, 1.0)

    hb0 = np.clip(np.where(female, rng.normal(13.2, 1.1, n), rng.normal(14.4, 1.2, n)), 9.0, 17.5)
    wbc0 = np.clip(np.exp(rng.normal(np.log(6.4), 0.25, n)), 3.2, 14.0)
    neut_frac = rng.uniform(0.52, 0.70, n)
    lymph_frac = rng.uniform(0.18, 0.32, n)
    plt0 = np.clip(np.exp(rng.normal(np.log(245.0), 0.25, n)), 110.0, 550.0)
    cr0 = np.clip(np.exp(rng.normal(np.log(np.where(female, 68.0, 84.0)), 0.18, n)), 35.0, 140.0)
    ast0 = np.exp(rng.normal(np.log(np.where(liver, 26.0, 21.0)), 0.28, n))
    alt0 = np.exp(rng.normal(np.log(np.where(liver, 25.0, 20.0)), 0.32, n))
    bili0 = np.clip(np.exp(rng.normal(np.log(9.0), 0.35, n)), 2.0, 40.0)
    alb0 = np.clip(rng.normal(4.0, 0.35, n), 2.8, 5.1)
    cga0 = np.clip(np.exp(rng.normal(np.log(250.0), 1.3, n)), 10.0, 40000.0)
    sensitive = np.where(rng.random(n) < 0.04, 2.3, 1.0)  # marrow-sensitive minority: grade 3-4
    d_hb = np.minimum(rng.beta(2, 14, n) * sensitive, 0.6)
    d_wbc = np.minimum(rng.beta(2, 7, n) * sensitive, 0.85)
    d_plt = np.minimum(rng.beta(2, 7, n) * sensitive, 0.9)
    d_lym = np.minimum(rng.beta(2.2, 5, n) * sensitive, 0.9)
    cr_inc = rng.beta(1.5, 12, n)
    cga_trend = np.array([0.2, 0.45, 0.9, 1.8])[best]

    def noise(sd: float) -> np.ndarray:
        return np.exp(rng.normal(0.0, sd, n_samples))

    v = np.empty((n_samples, len(ANALYTES)), dtype=np.float64)
    v[:, HB] = _round(np.clip(hb0[lp] * (1 - d_hb[lp] * decline) * noise(0.04), 5.0, 20.0), 1)
    neut = wbc0[lp] * neut_frac[lp] * (1 - d_wbc[lp] * decline) * noise(0.10)
    lymph = wbc0[lp] * lymph_frac[lp] * (1 - d_lym[lp] * decline) * noise(0.10)
    other = wbc0[lp] * (1 - neut_frac[lp] - lymph_frac[lp]) * (1 - 0.5 * d_wbc[lp] * decline) * noise(0.10)
    v[:, NEUT] = _round(np.maximum(neut, 0.1), 2)
    v[:, LYMPH] = _round(np.maximum(lymph, 0.05), 2)
    v[:, WBC] = _round(v[:, NEUT] + v[:, LYMPH] + np.maximum(other, 0.05), 2)
    v[:, PLT] = _round(np.clip(plt0[lp] * (1 - d_plt[lp] * decline) * noise(0.08), 8.0, 900.0), 0)
    v[:, CREAT] = _round(np.clip(cr0[lp] * (1 + cr_inc[lp] * cumulative) * noise(0.06), 20.0, 600.0), 0)
    spike = np.where(rng.random(n_samples) < 0.01, rng.uniform(1.5, 5.0, n_samples), 1.0)
    v[:, AST] = _round(np.clip(ast0[lp] * noise(0.15) * spike, 5.0, 2000.0), 0)
    spike = np.where(rng.random(n_samples) < 0.01, rng.uniform(1.5, 5.0, n_samples), 1.0)
    v[:, ALT] = _round(np.clip(alt0[lp] * noise(0.15) * spike, 4.0, 2000.0), 0)
    v[:, BILI] = _round(np.clip(bili0[lp] * noise(0.15), 1.5, 200.0), 1)
    alb_drift = np.where(best[lp] == 3, 0.3 * np.clip(t / 365.0, 0.0, 1.0), 0.0)
    v[:, ALB] = _round(np.clip(alb0[lp] - alb_drift + rng.normal(0.0, 0.12, n_samples), 2.0, 5.5), 1)
    v[:, CGA] = _round(np.clip(cga0[lp] * cga_trend[lp] ** np.clip(t / 180.0, 0.0, 1.0) * noise(0.2), 5.0, 100000.0), 0)

    per_sample = np.where(lj % 3 == 0, 11, 10)  # chromogranin A at baseline and every 3rd sample
    si = np.repeat(np.arange(n_samples), per_sample)
    analyte = np.arange(len(si)) - np.repeat(np.cumsum(per_sample) - per_sample, per_sample)
    lab_pat = lp[si]
    lab_value = v[si, analyte]
    ref = cfg.ref_set[site[lab_pat]]
    sex_col = np.where(female[lab_pat], 0, 2)
    lln = _REF[np.maximum(ref, 0), analyte, sex_col]
    uln = _REF[np.maximum(ref, 0), analyte, sex_col + 1]
    ref_valid = ref >= 0

    # ---- performance status: before each cycle, then 3-5 and (often) ~6 months after the last. The
    # first follow-up visit is at >= 90 days, where the warehouse reads "post" (the paper's "at least
    # three months after the final treatment session").
    ps_off = np.concatenate(
        [cyc_off - rng.integers(0, 4, (n, 7)),
         (last_off + rng.integers(90, 161, n))[:, None],
         (last_off + rng.integers(150, 201, n))[:, None]], axis=1)
    ps_valid = np.concatenate(
        [cyc_valid, np.ones((n, 1), bool), (rng.random(n) < 0.6)[:, None]], axis=1) & (ps_off < end[:, None])
    delta_p = np.where((best == 3)[:, None], [0.10, 0.40, 0.50], [0.38, 0.45, 0.17])
    delta = (rng.random(n)[:, None] > np.cumsum(delta_p, axis=1)).sum(axis=1) - 1
    ecog_post = np.clip(ecog0 + delta, 0, 4)
    ecog = np.where(rng.random((n, 9)) < 0.5, ecog0[:, None], ecog_post[:, None])
    ecog[:, 0] = ecog0
    ecog[:, 7:] = ecog_post[:, None]
    pp, pj = np.nonzero(ps_valid)
    ps_ecog = ecog[pp, pj]
    ps_kps = np.array([100, 80, 60, 40, 20])[ps_ecog] - 10 * rng.integers(0, 2, len(pp))
    kps_valid = rng.random(len(pp)) > 0.04
    ecog_valid = ~kps_valid | (rng.random(len(pp)) > 0.02)

    # ---- tumour assessments: baseline, every 6-9 weeks on therapy, 3 and 6 months after, then ~6-monthly
    grid = np.cumsum(rng.integers(42, 64, (n, 8)), axis=1)
    p3 = last_off + rng.integers(80, 101, n)
    p6 = last_off + rng.integers(170, 191, n)
    surveil = p6[:, None] + np.cumsum(rng.integers(150, 211, (n, 4)), axis=1)
    ta_off = np.concatenate([grid, p3[:, None], p6[:, None], surveil], axis=1)
    ta_valid = np.concatenate(
        [grid <= (last_off + 21)[:, None], np.ones((n, 2), bool), np.repeat((best != 3)[:, None], 4, axis=1)],
        axis=1) & (ta_off < end[:, None])
    core = ta_valid.copy()
    core[:, 10:] = False
    rank = np.cumsum(core, axis=1)  # 1-based rank among on-therapy/post-therapy assessments
    m_core = rank[:, 9]
    resp = np.empty((n, 14), dtype=np.int64)
    b = best[:, None]
    first_sd = (rng.random(n) < 0.5)[:, None]
    resp[:] = np.select(
        [b == 0, b == 1, b == 2],
        [np.where((rank * 2 <= m_core[:, None]) & (m_core[:, None] >= 2), 1, 0),
         np.where((rank == 1) & (m_core[:, None] >= 2) & first_sd, 2, 1),
         2],
        default=3,
    )
    ne = (rank > 1) & (rank < m_core[:, None]) & core & (rng.random((n, 14)) < 0.03)
    resp[ne] = 4
    progresses = rng.random(n) < np.array([0.3, 0.5, 0.6, 0.0])[best]
    prog_from = rng.integers(0, 4, n)
    final = np.where(best == 0, 0, np.where(best == 1, 1, 2))
    sv = np.arange(4)[None, :]
    resp[:, 10:] = np.where(progresses[:, None] & (sv >= prog_from[:, None]), 3, final[:, None])
    tp, tj = np.nonzero(ta_valid)
    ta_resp = resp[tp, tj]
    mri = rng.random(n) < 0.25
    ta_mod = np.where(rng.random(len(tp)) < 0.9, mri[tp], ~mri[tp]).astype(np.int64)
    sod0 = rng.uniform(25.0, 180.0, n)
    lo = np.array([0.0, 0.35, 0.82, 1.22, 0.0])[ta_resp]
    hi = np.array([0.0, 0.69, 1.15, 1.70, 0.0])[ta_resp]
    ta_sod = np.round(sod0[tp] * rng.uniform(lo, hi))
    sod_valid = ta_resp != 4
    ta_day = ta_off[tp, tj]
    # the baseline scan, 1-4 weeks before the first cycle, in the patient's usual modality: NE
    # with the sum of diameters that later responses are measured against (raw/README.md)
    everyone = np.arange(n)
    tp = np.concatenate([everyone, tp])
    ta_day = np.concatenate([-rng.integers(7, 29, n), ta_day])
    ta_mod = np.concatenate([mri.astype(np.int64), ta_mod])
    ta_resp = np.concatenate([np.full(n, RESPONSES.index("NE")), ta_resp])
    ta_sod = np.concatenate([np.round(sod0), ta_sod])
    sod_valid = np.concatenate([np.ones(n, dtype=bool), sod_valid])
    order = np.lexsort((ta_day, tp))  # patient by patient, in time
    tp, ta_day, ta_mod, ta_resp, ta_sod, sod_valid = (
        a[order] for a in (tp, ta_day, ta_mod, ta_resp, ta_sod, sod_valid))

    # ---- follow-up
    def last_data(off: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return np.where(valid, off, -10**6).max(axis=1)

    data_end = np.maximum.reduce([
        last_data(cyc_off, cyc_valid), lab_end, last_data(ps_off, ps_valid), last_data(ta_off, ta_valid)])
    censor_day = np.where(~dead & (lost_at < admin), start + lost_at - 1,
                          np.maximum(cutoff - rng.integers(0, 46, n), start + data_end))
    death_day = start + surv
    last_contact = np.where(dead, death_day, censor_day)

    # ---- assemble
    site_lbl = pa.array([_site_label(s) + "-" for s in range(cfg.sites)], pa.string()).take(pa.array(site))
    pid = pc.binary_join_element_wise(
        site_lbl, pc.utf8_lpad(pc.cast(pa.array(local_no), pa.string()), width=7, padding="0"), "")
    names = pa.array(_FIRST_F + _FIRST_M, pa.string()).take(pa.array(first))
    full_name = pc.binary_join_element_wise(names, pa.array(_LAST, pa.string()).take(pa.array(last)), " ")
    bool_labels = tuple(x for style in BOOL_STYLES for x in style)
    bstyle = cfg.bool_style[site] * 2

    def pid_of(p: np.ndarray) -> _Col:
        return _Col("cat", p, labels=pid)  # looked up slice by slice

    columns = {
        "patients.csv": {
            "patient_id": _Col("str", pid),
            "full_name": _Col("str", full_name),
            "birth_date": _Col("date", birth),
            "sex": _Col("cat", female.astype(np.int64), labels=SEXES),
            "primary_site": _Col("cat", primary, labels=PRIMARY_SITES),
            "tumour_grade": _Col("cat", np.minimum(grade, 2), grade < 3, labels=GRADES),
            "ki67_percent": _Col("float", ki67, ki67_valid),
            **{
                name: _Col("cat", bstyle + history[:, i], history_valid[:, i], labels=bool_labels)
                for i, name in enumerate(
                    ("prior_surgery", "prior_chemotherapy", "prior_radiotherapy", "hypertension", "diabetes"))
            },
            "baseline_imaging": _Col("cat", pet.astype(np.int64), labels=IMAGING),
            "krenning_score": _Col("int", krenning, ~pet),
            "suvmax": _Col("float", suvmax, suv_valid),
        },
    }
    mp, mj = np.nonzero(met)
    columns["metastases.csv"] = {"patient_id": pid_of(mp), "site": _Col("cat", mj, labels=MET_SITES)}

    q_act = list(UNIT_OPTIONS).index("activity")
    act_unit = cfg.unit_choice[site[cp], q_act]
    act_mult = np.array([u[1] for u in UNIT_OPTIONS["activity"]])[act_unit]
    act_dec = np.array([u[2] for u in UNIT_OPTIONS["activity"]])[act_unit]
    act_labels, act_code = _unit_labels("activity", act_unit, cfg.unit_lower[site[cp]])
    columns["cycles.csv"] = {
        "patient_id": pid_of(cp),
        "cycle_number": _Col("int", cj + 1),
        "administration_date": _Col("date", start[cp] + cyc_off[cp, cj]),
        "activity": _Col("float", _round(activity[cp, cj] / act_mult, act_dec)),
        "activity_unit": _Col("cat", act_code, labels=act_labels),
        "amino_acid_infusion": _Col("cat", amino[cp, cj].astype(np.int64), labels=BOOL_STYLES[0]),
    }

    # lab units per (centre, analyte)
    q_index = np.array([list(UNIT_OPTIONS).index(a) for a in ANALYTES])
    lab_site = site[lab_pat]
    lab_unit = cfg.unit_choice[lab_site, q_index[analyte]]
    mult_tab = np.zeros((len(ANALYTES), 4))
    dec_tab = np.zeros((len(ANALYTES), 4), dtype=np.int64)
    for a, name in enumerate(ANALYTES):
        for k, (_, mult, dec) in enumerate(UNIT_OPTIONS[name]):
            mult_tab[a, k], dec_tab[a, k] = mult, dec
    mult = mult_tab[analyte, lab_unit]
    dec = dec_tab[analyte, lab_unit]
    unit_labels, unit_code = _lab_unit_labels(analyte, lab_unit, cfg.unit_lower[lab_site])
    columns["labs.csv"] = {
        "patient_id": pid_of(lab_pat),
        "sample_date": _Col("date", start[lab_pat] + lab_off[lp, lj][si]),
        "analyte": _Col("cat", analyte, labels=ANALYTES),
        "value": _Col("float", _round(lab_value / mult, dec)),
        "unit": _Col("cat", unit_code, labels=unit_labels),
        "lln": _Col("float", _round(lln / mult, dec + 1), ref_valid),
        "uln": _Col("float", _round(uln / mult, dec + 1), ref_valid),
    }
    columns["performance_status.csv"] = {
        "patient_id": pid_of(pp),
        "assessment_date": _Col("date", start[pp] + ps_off[pp, pj]),
        "ecog": _Col("int", ps_ecog, ecog_valid),
        "kps": _Col("int", ps_kps, kps_valid),
    }
    columns["tumour_assessments.csv"] = {
        "patient_id": pid_of(tp),
        "assessment_date": _Col("date", start[tp] + ta_day),
        "modality": _Col("cat", ta_mod, labels=MODALITIES),
        "recist_response": _Col("cat", ta_resp, labels=RESPONSES),
        "sum_of_diameters_mm": _Col("float", ta_sod, sod_valid),
    }
    columns["follow_up.csv"] = {
        "patient_id": _Col("str", pid),
        "last_contact_date": _Col("date", last_contact),
        "vital_status": _Col("cat", dead.astype(np.int64), labels=VITAL),
        "death_date": _Col("date", death_day, dead),
    }

    # row context for injecting bad rows (patient-level facts mapped to each file's rows)
    pat_rows = {
        "patients.csv": rows, "metastases.csv": mp, "cycles.csv": cp, "labs.csv": lab_pat,
        "performance_status.csv": pp, "tumour_assessments.csv": tp, "follow_up.csv": rows,
    }
    context: dict[str, dict[str, np.ndarray]] = {}
    if cfg.messy:  # only the first slice of a chunk receives bad rows
        head = slice(0, SLICE_ROWS)
        context = {
            f: {"birth": birth[p[head]], "first_cycle": start[p[head]], "dead": dead[p[head]]}
            for f, p in pat_rows.items()
        }
        context["labs.csv"].update(analyte=analyte[head], mult=mult[head], dec=dec[head])
        context["cycles.csv"].update(mult=act_mult[head], dec=act_dec[head])
    return _Chunk(columns, context, {f: len(p) for f, p in pat_rows.items()})


def _unit_labels(quantity: str, choice: np.ndarray, lower: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    units = [u[0] for u in UNIT_OPTIONS[quantity]]
    labels = tuple(units) + tuple(u.lower() for u in units)
    return labels, choice + np.where(lower, len(units), 0)


def _lab_unit_labels(analyte: np.ndarray, choice: np.ndarray, lower: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    labels: list[str] = []
    for name in ANALYTES:  # 4 slots per analyte, then the same in lower case
        units = [u[0] for u in UNIT_OPTIONS[name]]
        labels += units + [""] * (4 - len(units))
    labels += [x.lower() for x in labels]
    return tuple(labels), analyte * 4 + choice + np.where(lower, 4 * len(ANALYTES), 0)


# --------------------------------------------------------------------------- bad rows

# kind -> files it is injected into
KINDS: dict[str, tuple[str, ...]] = {
    "unknown_patient": ("metastases.csv", "cycles.csv", "labs.csv", "performance_status.csv",
                        "tumour_assessments.csv", "follow_up.csv"),
    "date_before_birth": ("cycles.csv", "labs.csv", "performance_status.csv", "tumour_assessments.csv"),
    "date_after_today": ("patients.csv", "cycles.csv", "labs.csv", "performance_status.csv",
                         "tumour_assessments.csv", "follow_up.csv"),
    "death_before_first_cycle": ("follow_up.csv",),
    "activity_over_15_gbq": ("cycles.csv",),
    "hb_over_25": ("labs.csv",),
    "unknown_unit": ("cycles.csv", "labs.csv"),
    "missing_required": FILES,
    "unparseable_date": ("patients.csv", "cycles.csv", "labs.csv", "performance_status.csv",
                         "tumour_assessments.csv", "follow_up.csv"),
    "duplicate_row": FILES,
}
_DATE_FIELD = {
    "patients.csv": "birth_date", "cycles.csv": "administration_date", "labs.csv": "sample_date",
    "performance_status.csv": "assessment_date", "tumour_assessments.csv": "assessment_date",
    "follow_up.csv": "last_contact_date",
}
_MISSING_FIELD = {
    "patients.csv": "sex", "metastases.csv": "site", "cycles.csv": "activity", "labs.csv": "value",
    "performance_status.csv": "assessment_date", "tumour_assessments.csv": "recist_response",
    "follow_up.csv": "vital_status",
}


class _Injector:
    """Plans the bad rows of a messy export and splices them into the written slices."""

    def __init__(self, cfg: _Config, n_chunks: int):
        rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(1_000_002,)))
        self.cfg = cfg
        self.rng = rng
        self.plan: dict[tuple[str, int], list[str]] = {}
        for kind, files in KINDS.items():
            for f in files:
                for _ in range(int(rng.integers(1, 4))):
                    self.plan.setdefault((f, int(rng.integers(0, n_chunks))), []).append(kind)
        self.records: dict[str, list[dict]] = {f: [] for f in FILES}
        self._serial = 0

    def _new_id(self, lead: str) -> str:
        # real ids are S<site>-<7 digits> numbered from 1; 8xxxxxx/9xxxxxx never occur
        self._serial += 1
        site = int(self.rng.integers(0, self.cfg.sites))
        return f"{_site_label(site)}-{lead}{self._serial:06d}"

    def inject(self, f: str, chunk: int, table: pa.Table, ctx: dict[str, np.ndarray], first_line: int) -> pa.Table:
        kinds = self.plan.get((f, chunk))
        if not kinds or table.num_rows == 0:
            return table
        rng, fmt = self.rng, self.cfg.formats[f]
        n = table.num_rows
        pool = rng.permutation(n)
        used: set[int] = set()

        def source(eligible: np.ndarray | None = None) -> int | None:
            candidates = pool if eligible is None else pool[eligible[pool]]
            for i in candidates:
                if int(i) not in used:
                    used.add(int(i))
                    return int(i)
            return None

        bad_rows, keys, meta = [], [], []
        for kind in kinds:
            eligible = None
            if kind == "hb_over_25":
                eligible = ctx["analyte"] == HB
            elif kind == "date_after_today" and f == "follow_up.csv":
                eligible = ~ctx["dead"] if (~ctx["dead"]).any() else None
            i = source(eligible)
            if i is None:
                continue  # too few rows in this slice for distinct sources: inject fewer
            row = {k: v[0] for k, v in table.slice(i, 1).to_pydict().items()}
            field = None
            if f == "patients.csv" and kind != "duplicate_row":
                row["patient_id"] = self._new_id("8")  # a new patient: no child rows depend on it
            if kind == "unknown_patient":
                row["patient_id"], field = self._new_id("9"), "patient_id"
            elif kind == "date_before_birth":
                field = _DATE_FIELD[f]
                row[field] = fmt.date(int(ctx["birth"][i]) - int(rng.integers(30, 3650)))
            elif kind == "date_after_today":
                field = _DATE_FIELD[f]
                row[field] = fmt.date(FUTURE_FIRST + int(rng.integers(0, 3650)))
            elif kind == "death_before_first_cycle":
                field = "death_date"
                day = fmt.date(int(ctx["first_cycle"][i]) - int(rng.integers(1, 60)))
                row.update(vital_status="dead", death_date=day, last_contact_date=day)
            elif kind == "activity_over_15_gbq":
                field = "activity"
                row[field] = fmt.number(rng.uniform(16.0, 40.0) / ctx["mult"][i], int(ctx["dec"][i]))
            elif kind == "hb_over_25":
                field = "value"
                row[field] = fmt.number(rng.uniform(26.0, 40.0) / ctx["mult"][i], int(ctx["dec"][i]))
            elif kind == "unknown_unit":
                field = "unit" if f == "labs.csv" else "activity_unit"
                row[field] = str(rng.choice(UNKNOWN_LAB_UNITS if f == "labs.csv" else UNKNOWN_ACTIVITY_UNITS))
            elif kind == "missing_required":
                field = _MISSING_FIELD[f]
                if f == "follow_up.csv" and row["vital_status"] == "dead":
                    field = "death_date"  # required when dead
                row[field] = None
            elif kind == "unparseable_date":
                field = _DATE_FIELD[f]
                row[field] = str(rng.choice(BAD_DATES))
            # later than its source (a duplicate must follow the row it repeats)
            keys.append(i + 0.5 + min(int(rng.integers(0, 20)), n - 1 - i) + rng.random() * 0.1)
            bad_rows.append(row)
            meta.append({"kind": kind, "patient_id": row["patient_id"], "field": field})
        if not bad_rows:
            return table
        bad = pa.Table.from_pylist(bad_rows, schema=table.schema)
        order = np.argsort(np.concatenate([np.arange(n, dtype=np.float64), np.array(keys)]), kind="stable")
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        for m, pos in zip(meta, position[n:]):
            self.records[f].append({"line": int(first_line + pos), **m})
        return pa.concat_tables([table, bad]).take(pa.array(order))

    def summary(self) -> dict[str, dict]:
        out = {}
        for f in FILES:
            recs = sorted(self.records[f], key=lambda r: r["line"])
            by_kind: dict[str, int] = {}
            for r in recs:
                by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
            out[f] = {"rejected": len(recs), "by_kind": dict(sorted(by_kind.items())), "rows": recs}
        return out


# --------------------------------------------------------------------------- writing


class _Sink:
    """One CSV file, written header first, then appended slice by slice."""

    def __init__(self, path: Path, columns: tuple[str, ...], fmt: FileFormat):
        self.file = pa.OSFile(str(path), "wb")
        self.file.write((b"\xef\xbb\xbf" if fmt.bom else b"") + fmt.header(columns).encode("utf-8"))
        self.options = pacsv.WriteOptions(
            include_header=False, delimiter=fmt.delimiter, eol=fmt.eol, quoting_style="none")
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            pacsv.write_csv(table, self.file, self.options)
            self.rows += table.num_rows

    def close(self) -> None:
        self.file.close()


def _cutoff_day(cutoff: date | None) -> int:
    today = date.today()
    chosen = min(cutoff or DEFAULT_CUTOFF, today)
    if _day(chosen) - 180 < START_FIRST:
        raise ValueError(f"cutoff {chosen} leaves no room for first cycles from 2015 on")
    return _day(chosen)


def generate_export(
    n_patients: int,
    out_dir: Path,
    seed: int = 0,
    sites: int = 3,
    messy: bool = False,
    *,
    cutoff: date | None = None,
) -> dict[str, int]:
    """Write a synthetic export of ``n_patients`` into ``out_dir``; return data rows per file.

    Same arguments -> byte-identical files. ``cutoff`` (default 2026-06-30, never after
    today) is the administrative censoring date. With ``messy`` the files use the
    tolerated format variations and carry injected bad rows, listed in
    ``_expected_rejections.json``; the row counts returned include those rows.
    """
    if n_patients < 1:
        raise ValueError("n_patients must be >= 1")
    if not 1 <= sites <= 99:
        raise ValueError("sites must be between 1 and 99")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = _make_config(n_patients, seed, sites, messy, _cutoff_day(cutoff))
    n_chunks = -(-n_patients // CHUNK_PATIENTS)
    injector = _Injector(cfg, n_chunks) if messy else None
    stale = out_dir / EXPECTED_REJECTIONS_FILE
    if stale.exists():
        stale.unlink()

    site_w = 1.0 / np.sqrt(np.arange(1, sites + 1))
    site_p = site_w / site_w.sum()
    counters = np.zeros(sites, dtype=np.int64)
    sinks = {f: _Sink(out_dir / f, COLUMNS[f], cfg.formats[f]) for f in FILES}
    try:
        for chunk in range(n_chunks):
            n = min(CHUNK_PATIENTS, n_patients - chunk * CHUNK_PATIENTS)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk,)))
            site = rng.choice(sites, n, p=site_p)
            local_no = np.empty(n, dtype=np.int64)
            for s in range(sites):
                mask = site == s
                local_no[mask] = counters[s] + np.arange(1, mask.sum() + 1)
                counters[s] += mask.sum()
            if counters.max() >= 8_000_000:
                raise ValueError("too many patients per centre for 7-digit record numbers; add --sites")
            data = _simulate(rng, cfg, site, local_no)
            for f in FILES:
                fmt, cols, total = cfg.formats[f], data.columns[f], data.n_rows[f]
                for lo in range(0, max(total, 1), SLICE_ROWS):
                    hi = min(lo + SLICE_ROWS, total)
                    table = pa.table({name: cols[name].slice(lo, hi).strings(fmt) for name in COLUMNS[f]})
                    if injector is not None and lo == 0:
                        table = injector.inject(f, chunk, table, data.context[f], first_line=sinks[f].rows + 2)
                    sinks[f].write(table)
            del data
    finally:
        for sink in sinks.values():
            sink.close()

    counts = {f: sinks[f].rows for f in FILES}
    if injector is not None:
        summary = injector.summary()
        record = {
            "generator": "prrt.synth",
            "n_patients": n_patients,
            "seed": seed,
            "sites": sites,
            "cutoff": date.fromordinal(_EPOCH.toordinal() + cfg.cutoff).isoformat(),
            "note": "lines are 1-based line numbers in the file (header = line 1); every other row is valid",
            **cfg.describe(),
            "files": {
                f: {
                    "rows_read": counts[f],
                    "rows_accepted": counts[f] - summary[f]["rejected"],
                    **summary[f],
                }
                for f in FILES
            },
        }
        (out_dir / EXPECTED_REJECTIONS_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="prrt synth", description="Write a synthetic PRRT export in the contract format.")
    parser.add_argument("--patients", type=int, required=True, help="number of patients")
    parser.add_argument("--out", type=Path, required=True, help="export folder to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--sites", type=int, default=3, help="number of centres (default 3)")
    parser.add_argument("--messy", action="store_true",
                        help="tolerated format variations + injected bad rows (see _expected_rejections.json)")
    parser.add_argument("--cutoff", type=date.fromisoformat, default=None,
                        help=f"data cut-off date YYYY-MM-DD (default {DEFAULT_CUTOFF}, never after today)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    counts = generate_export(args.patients, args.out, seed=args.seed, sites=args.sites,
                             messy=args.messy, cutoff=args.cutoff)
    elapsed = time.perf_counter() - t0
    for f, rows in counts.items():
        print(f"{f:<24} {rows:>12,d} rows")
    print(f"wrote {sum(counts.values()):,d} rows for {args.patients:,d} patients to {args.out} in {elapsed:.1f} s")
    if args.messy:
        print(f"injected bad rows are listed in {args.out / EXPECTED_REJECTIONS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
