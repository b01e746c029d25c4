#!/usr/bin/env python3
"""Build the bundled demo export ``raw/demo/`` from ``raw/paper_table1.csv``.

The demo export holds the 16 patients of Kalantarhormozi et al. (2020), "Peptide
Receptor Radionuclide Therapy with 177Lu-DOTATATE in Advanced NETs in a Limited
Resource Environment" (Research Square, doi:10.21203/rs.3.rs-111380/v1), in the
raw export format of CONTRACT section 2.  Everything the paper's Table 1 gives is
copied; everything else (identifiers, dates, per-cycle activities, lab series,
assessments, follow-up) is synthesized so that the paper's aggregate results come
out of the pipeline: the response counts, ECOG/KPS medians, the Table 2 toxicity
counts and a Kaplan-Meier median overall survival of 23 months with 3 deaths.
``raw/README.md`` ("The demo export") explains each choice.

Deterministic: standard library only, seeded per patient and purpose, no clock, no
network.  Every invariant the demo relies on is asserted while building, so a change
that breaks one fails here rather than in the warehouse.

    python raw/build_demo_export.py            # writes raw/demo/*.csv
    python raw/build_demo_export.py --out DIR  # writes DIR/*.csv
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
TABLE1 = HERE / "paper_table1.csv"
DEFAULT_OUT = HERE / "demo"
SEEDS = HERE.parent / "dbt" / "seeds"

SEED = 20201120  # the preprint's posting date
DATA_CUTOFF = date(2020, 4, 30)  # "from June 2017 to April 2020"
FIRST_POSSIBLE = date(2017, 6, 1)

# --------------------------------------------------------------------------------------
# The synthetic scenario (what the paper does not give).
#
# First administration and fate per paper patient.  Overall survival (from the first
# administration) is shaped so that lifelines' Kaplan-Meier median is 23 months:
#   patient 7  dies at day 147 with all 16 at risk          S = 15/16     = 0.94
#   patient 16 dies at day 600 with 4 at risk (16, 9, 4, 8)  S * 3/4      = 0.70
#   patient 9  dies at day 700 with 2 at risk (9, 8)         S * 1/2      = 0.35
# -> median = 700 days = 23.0 months (days / 30.4375).  Patient 4 is censored between
# day 600 and 700, patient 8 (the only 2017 start besides 9) after day 700; every other
# patient starts late 2018-2019 and is censored alive before day 600.
START_AND_FATE: dict[int, tuple[date, str, date | int]] = {
    # paper_patient: (first administration, "alive", last contact) | (..., "dead", OS days)
    1: (date(2019, 1, 19), "alive", date(2020, 4, 14)),
    2: (date(2018, 10, 27), "alive", date(2020, 4, 7)),
    3: (date(2019, 7, 27), "alive", date(2020, 4, 21)),
    4: (date(2018, 7, 7), "alive", date(2020, 4, 11)),
    5: (date(2018, 11, 17), "alive", date(2020, 3, 31)),
    6: (date(2019, 3, 9), "alive", date(2020, 4, 25)),
    7: (date(2019, 7, 6), "dead", 147),
    8: (date(2017, 6, 24), "alive", date(2020, 4, 28)),
    9: (date(2017, 11, 11), "dead", 700),
    10: (date(2019, 4, 13), "alive", date(2020, 3, 24)),
    11: (date(2019, 2, 16), "alive", date(2020, 4, 18)),
    12: (date(2018, 12, 8), "alive", date(2020, 4, 4)),
    13: (date(2019, 5, 18), "alive", date(2020, 4, 27)),
    14: (date(2019, 8, 24), "alive", date(2020, 4, 29)),
    15: (date(2019, 6, 22), "alive", date(2020, 3, 28)),
    16: (date(2018, 4, 21), "dead", 600),
}

# Worst post-baseline CTCAE v4.03 grade per term (Table 2), given to the patients with
# the most cycles / activity; creatinine to the two patients with hypertension AND
# diabetes (renal risk factors).  Everyone else: grade 0 everywhere.
TOXICITY: dict[str, dict[int, int]] = {
    "hemoglobin": {8: 2, 5: 2, 12: 2, 1: 1, 2: 1, 4: 1, 6: 1, 10: 1, 11: 1, 13: 1},
    "wbc": {8: 2, 5: 2, 4: 2, 1: 1, 2: 1, 12: 1},
    "platelets": {8: 1, 5: 1},
    "creatinine": {1: 1, 12: 1},
}

MRI_PATIENTS = {3, 10, 13}  # followed with liver MRI instead of CT
# Figure 2 (patient 1): baseline lesions 34 mm (liver) + 23 mm (IVC); follow-up
# Ga-68 PET/CT 4 months after the 4th cycle: 20 mm + 16 mm; SUVmax 34.74 (sacrum).
PATIENT1_SUMS = {"baseline": 57, "pet": 36, "series": [52, 46, 38, 37, 36, 35]}
PATIENT1_SUVMAX = "34.74"

# Hospital laboratory reference ranges written into lln/uln (canonical units).  The
# LLNs of the "decreased" analytes equal the seed defaults; ULNs differ a little.
HOSPITAL_RANGES = {
    ("hemoglobin", "F"): (12.0, 15.5), ("hemoglobin", "M"): (13.0, 17.5),
    ("wbc", ""): (4.0, 10.0), ("platelets", ""): (150.0, 450.0),
    ("creatinine", "F"): (53.0, 97.0), ("creatinine", "M"): (62.0, 115.0),
    ("ast", ""): (5.0, 37.0), ("alt", ""): (5.0, 41.0),
}
UNITS = {"hemoglobin": "g/dL", "wbc": "10^9/L", "platelets": "10^9/L", "creatinine": "umol/L",
         "ast": "U/L", "alt": "U/L", "chromogranin_a": "ng/mL"}
DECIMALS = {"hemoglobin": 1, "wbc": 1, "platelets": 0, "creatinine": 0, "ast": 0, "alt": 0}
# Minimum distance of every lab value from every CTCAE band edge (floating point safety).
MARGIN = {"hemoglobin": 0.2, "wbc": 0.2, "platelets": 5.0, "creatinine": 3.0, "ast": 2.0, "alt": 2.0}
EMPTY_RANGE_SHARE = 0.10  # samples sent without lln/uln (seed defaults apply)

STANDARD_DOSES_MBQ = (7400, 6475, 5550, 4625, 4440, 3700)  # 200/175/150/125/120/100 mCi
MIN_DOSE_MBQ, MAX_DOSE_MBQ = 3700, 7400  # "3.7 to 7.4 GBq" per cycle


def rng_for(patient: int, purpose: str) -> random.Random:
    """One independent, reproducible stream per patient and purpose."""
    return random.Random(f"{SEED}:{patient}:{purpose}")


def days(n: int) -> timedelta:
    return timedelta(days=n)


# --------------------------------------------------------------------------------------
# CTCAE v4.03 grading (canonical units), used here only to assert the design.


def grade(analyte: str, value: float, lln: float, uln: float, baseline: float | None = None) -> int:
    if analyte == "hemoglobin":
        return 3 if value < 8.0 else 2 if value < 10.0 else 1 if value < lln else 0
    if analyte == "wbc":
        return 4 if value < 1.0 else 3 if value < 2.0 else 2 if value < 3.0 else 1 if value < lln else 0
    if analyte == "platelets":
        return 4 if value < 25 else 3 if value < 50 else 2 if value < 75 else 1 if value < lln else 0
    if analyte in ("ast", "alt"):
        return 4 if value > 20 * uln else 3 if value > 5 * uln else 2 if value > 3 * uln else 1 if value > uln else 0
    if analyte == "creatinine":
        by_uln = 4 if value > 6 * uln else 3 if value > 3 * uln else 2 if value > 1.5 * uln else 1 if value > uln else 0
        by_base = 0
        if baseline is not None:
            by_base = 3 if value > 3 * baseline else 2 if value > 1.5 * baseline else 1 if value > baseline else 0
        return max(by_uln, by_base)
    raise ValueError(analyte)


def band_edges(analyte: str, ranges: list[tuple[float, float]], baseline: float | None) -> list[float]:
    if analyte == "hemoglobin":
        return [lo for lo, _ in ranges] + [10.0, 8.0]
    if analyte == "wbc":
        return [lo for lo, _ in ranges] + [3.0, 2.0, 1.0]
    if analyte == "platelets":
        return [lo for lo, _ in ranges] + [75.0, 50.0, 25.0]
    if analyte == "creatinine":
        edges = [k * hi for _, hi in ranges for k in (1, 1.5, 3, 6)]
        if baseline is not None:
            edges += [baseline, 1.5 * baseline, 3 * baseline]
        return edges
    return [hi for _, hi in ranges]  # ast / alt


# --------------------------------------------------------------------------------------
# Inputs


def read_seed_ranges() -> dict[tuple[str, str], tuple[float, float]]:
    with (SEEDS / "lab_reference_ranges.csv").open(newline="", encoding="utf-8") as handle:
        return {(r["analyte"], r["sex"]): (float(r["lln"]), float(r["uln"])) for r in csv.DictReader(handle)}


def read_plausibility() -> dict[str, tuple[float, float]]:
    with (SEEDS / "lab_analytes.csv").open(newline="", encoding="utf-8") as handle:
        return {r["analyte"]: (float(r["plausible_min"]), float(r["plausible_max"])) for r in csv.DictReader(handle)}


def read_table1() -> list[dict[str, str]]:
    with TABLE1.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["paper_patient"]) for r in rows] == list(range(1, 17)), "paper_table1.csv: patients 1..16"
    return rows


def lookup_range(table: dict[tuple[str, str], tuple[float, float]], analyte: str, sex: str) -> tuple[float, float]:
    return table.get((analyte, sex)) or table[(analyte, "")]


# --------------------------------------------------------------------------------------
# Per-patient synthesis


@dataclass
class Patient:
    pp: int  # paper patient number
    t1: dict[str, str]
    patient_id: str = ""
    birth_date: date | None = None
    first: date | None = None
    cycles: list[tuple[date, int]] = field(default_factory=list)  # (date, activity MBq)
    end: date | None = None  # last contact (= death date when dead)
    dead: bool = False

    @property
    def sex(self) -> str:
        return self.t1["sex"]

    @property
    def last_admin(self) -> date:
        return self.cycles[-1][0]


def full_years(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def split_activity(total_gbq: str, n: int) -> list[int]:
    """Per-cycle activities (integer MBq) in 3.7-7.4 GBq summing exactly to the total.

    Prefers the vial sizes used in practice (100-200 mCi); of the combinations that
    fit, the most even one; larger activities first (later cycles reduced)."""
    total = int(Decimal(total_gbq) * 1000)
    fits = [c for c in itertools.combinations_with_replacement(STANDARD_DOSES_MBQ, n) if sum(c) == total]
    if fits:
        best = min(fits, key=lambda c: (max(c) - min(c), [-x for x in c]))
        doses = sorted(best, reverse=True)
    else:  # even split, remainder spread over the first cycles
        base, rest = divmod(total, n)
        doses = [base + (1 if i < rest else 0) for i in range(n)]
    assert sum(doses) == total and all(MIN_DOSE_MBQ <= d <= MAX_DOSE_MBQ for d in doses), (total_gbq, doses)
    return doses


def gbq_text(mbq: int) -> str:
    return f"{mbq / 1000:.3f}".rstrip("0").rstrip(".")


def build_patient(pp: int, t1: dict[str, str], used_ids: set[str]) -> Patient:
    p = Patient(pp, t1)
    r = rng_for(pp, "identity")
    while True:  # synthetic hospital record number
        pid = f"BUMS-{r.randint(100000, 999999):06d}"
        if pid not in used_ids:
            used_ids.add(pid)
            break
    p.patient_id = pid

    first, fate, when = START_AND_FATE[pp]
    p.first = first
    rc = rng_for(pp, "cycles")
    doses = split_activity(t1["cumulative_activity_gbq"], int(t1["n_cycles"]))
    d = first
    for k, dose in enumerate(doses):
        if k:
            d = d + days(rc.randint(43, 55))  # 6-8 weeks
        p.cycles.append((d, dose))
    if fate == "dead":
        p.dead = True
        p.end = first + days(int(when))
    else:
        p.end = when

    age = int(t1["age"])
    anniversary = date(first.year - age, first.month, min(first.day, 28))
    born = anniversary - days(r.randint(20, 340))
    if (born.month, born.day) == (2, 29):
        born -= days(1)
    p.birth_date = born
    assert full_years(born, first) == age, (pp, born, first, age)
    return p


# ---- performance status ----------------------------------------------------------------


def performance_rows(p: Patient) -> list[list[str]]:
    """Baseline (on/before cycle 1), one before each later cycle, post at ~3 months."""
    r = rng_for(p.pp, "performance")
    e0, e1 = int(p.t1["ecog_pre"]), int(p.t1["ecog_post"])
    k0, k1 = int(p.t1["kps_pre"]), int(p.t1["kps_post"])
    n = len(p.cycles)
    rows = [(p.first - days(r.randint(0, 7)), e0, k0)]
    for k in range(1, n):  # assessed on the day of cycle k+1, trending to the post values
        f = k / n
        rows.append((p.cycles[k][0], round(e0 + (e1 - e0) * f), int(round((k0 + (k1 - k0) * f) / 10) * 10)))
    post = p.last_admin + days(r.randint(90, 105))  # "at least three months after": >= 90 days (contract v2)
    rows.append((post, e1, k1))
    assert post <= p.end and (not p.dead or post < p.end), (p.pp, "post ECOG after follow-up")
    return [[p.patient_id, d.isoformat(), str(e), str(k)] for d, e, k in rows]


# ---- tumour assessments ----------------------------------------------------------------


def scan_dates(p: Patient) -> tuple[date, list[tuple[date, str]]]:
    """Baseline date and the post-baseline (date, modality) list."""
    r = rng_for(p.pp, "scans")
    modality = "mri" if p.pp in MRI_PATIENTS else "ct"
    baseline = p.first - days(r.randint(7, 28))
    response = p.t1["best_response"]
    scans: list[tuple[date, str]] = []
    if len(p.cycles) == 1:  # early restaging before the second cycle was due
        scans.append((p.first + days(r.randint(35, 40)), modality))
    for k in range(1, len(p.cycles)):  # restaging before each later cycle (every 6-8 weeks)
        d = p.cycles[k][0] - days(r.randint(2, 6))
        if response == "PD":  # the first restaging of a progressor came before day 42
            d = min(d, p.first + days(40))
        scans.append((d, modality))
    limit = p.end - days(1 if not p.dead else 7)
    three = p.last_admin + days(r.randint(85, 100))
    six = p.last_admin + days(r.randint(170, 185))
    for d in (three, six):
        if d <= limit:
            scans.append((d, modality))
    if p.t1["followup_ga68_pet"] == "yes":  # Figure 2: PET/CT 4 months after the last cycle
        scans.append((p.last_admin + days(120 if p.pp == 1 else r.randint(105, 130)), "ga68_dotatate_pet"))
    if response == "SD" and p.dead:  # late progression before death
        scans.append((p.end - days(r.randint(60, 90)), modality))
    scans.sort()
    assert all(d <= limit for d, _ in scans), (p.pp, "scan after follow-up")
    return baseline, scans


def classify(total: int, baseline: int, nadir: int) -> str:
    if total == 0:
        return "CR"
    if total >= 1.2 * nadir and total - nadir >= 5:
        return "PD"
    if total <= 0.7 * baseline:
        return "PR"
    return "SD"


def tumour_rows(p: Patient) -> list[list[str]]:
    r = rng_for(p.pp, "recist")
    base_date, scans = scan_dates(p)
    response = p.t1["best_response"]
    modality0 = scans[0][1] if scans[0][1] != "ga68_dotatate_pet" else "ct"
    base = PATIENT1_SUMS["baseline"] if p.pp == 1 else r.randint(45, 140)
    m = len(scans)
    if p.pp == 1:
        sums = list(PATIENT1_SUMS["series"])
        assert len(sums) == m and sums[[s[1] for s in scans].index("ga68_dotatate_pet")] == PATIENT1_SUMS["pet"]
    elif response in ("PR", "CR"):
        # stable disease at the first restaging, partial response from the second on,
        # shrinking further; complete responders reach 0 mm on the last scans
        zeros = max(1, m - 3) if response == "CR" else 0
        shrinking = m - 1 - zeros
        f2, final = (r.uniform(0.58, 0.66), r.uniform(0.38, 0.55)) if response == "PR" else \
            (r.uniform(0.45, 0.6), r.uniform(0.2, 0.4))
        factors = [r.uniform(0.78, 0.9)]
        factors += [f2 + (final - f2) * (i / max(shrinking - 1, 1)) ** 0.8 for i in range(shrinking)]
        factors += [0.0] * zeros
        sums = [round(base * f) for f in factors]
    elif response == "SD":
        sums = []
        for d, _ in scans:
            if p.dead and d == scans[-1][0]:
                sums.append(round(min(sums) * r.uniform(1.3, 1.4)))  # late progression
            else:
                sums.append(round(base * r.uniform(0.86, 0.96)))
    else:  # PD: stable before day 42, then growing
        sums, level = [], 1.0
        for d, _ in scans:
            if (d - p.first).days < 42:
                sums.append(round(base * r.uniform(1.04, 1.1)))
            else:
                level = max(level, 1.2) + r.uniform(0.1, 0.2)
                sums.append(round(base * level))
    rows = [[p.patient_id, base_date.isoformat(), modality0, "NE", str(base)]]
    nadir = base
    responses = []
    for (d, modality), total in zip(scans, sums):
        resp = classify(total, base, nadir)
        # keep every sum clear of the 30 % / 20 % thresholds
        assert total == 0 or abs(total - 0.7 * base) >= 1 and abs(total - 1.2 * nadir) >= 1, (p.pp, total, base)
        nadir = min(nadir, total)
        responses.append((d, resp))
        rows.append([p.patient_id, d.isoformat(), modality, resp, str(total)])
    assert best_response(p.first, responses) == response, (p.pp, responses)
    return rows


def best_response(first: date, responses: list[tuple[date, str]]) -> str | None:
    """CONTRACT: best of CR > PR > SD > PD after the first administration, NE ignored,
    SD only at >= 42 days."""
    seen = {resp for d, resp in responses if d > first and resp != "NE"
            and not (resp == "SD" and (d - first).days < 42)}
    return next((x for x in ("CR", "PR", "SD", "PD") if x in seen), None)


# ---- labs --------------------------------------------------------------------------------


def lab_dates(p: Patient) -> list[date]:
    """Baseline 1-14 days before cycle 1, then monthly to 3-6 months after the last cycle."""
    r = rng_for(p.pp, "labdates")
    d = p.first - days(r.randint(1, 14))
    end = min(p.last_admin + days(r.randint(95, 180)), p.end - days(7 if p.dead else 1))
    dates = [d]
    while True:
        d = d + days(r.randint(28, 31))
        if d > end:
            return dates
        dates.append(d)


def marrow_load(p: Patient, d: date) -> float:
    """Relative myelosuppression: each cycle dips counts with a nadir ~6 weeks later and
    partial recovery; later cycles weigh more (cumulative marrow dose)."""
    s = 0.0
    for k, (cd, mbq) in enumerate(p.cycles):
        t = (d - cd).days
        if t > 0:
            s += (mbq / MAX_DOSE_MBQ) * (1 + 0.15 * k) * (t / 42) * math.exp(1 - t / 42)
    return s


def renal_load(p: Patient, d: date) -> float:
    """Slow, cumulative rise of creatinine after each cycle (late renal toxicity)."""
    return sum(mbq * (1 - math.exp(-(d - cd).days / 75)) for cd, mbq in p.cycles if d > cd)


def days_since_cycle(p: Patient, d: date) -> int | None:
    before = [(d - cd).days for cd, _ in p.cycles if cd < d]
    return min(before) if before else None


def nudge(analyte: str, value: float, edges: list[float], low: float, high: float, r: random.Random) -> float:
    """Move a value off any band edge by the smallest step that stays in [low, high]
    (the bounds keep the worst grade as designed); ties go either way at random."""
    step = 10 ** -DECIMALS[analyte]

    def clear(v: float) -> bool:
        return low - 1e-9 <= v <= high + 1e-9 and all(abs(v - e) >= MARGIN[analyte] - 1e-9 for e in edges)

    if clear(value):
        return value
    sign = r.choice((1, -1))
    for k in range(1, 1000):
        for direction in (sign, -sign):
            v = round(value + direction * k * step, DECIMALS[analyte])
            if clear(v):
                return v
    raise AssertionError((analyte, value, low, high))


def count_series(p: Patient, dates: list[date], analyte: str, target_grade: int,
                 ranges: list[tuple[float, float]]) -> list[float]:
    """Hb / WBC / platelets: baseline normal, nadir of the intended grade 4-8 weeks
    after a cycle, every other value between the nadir and the baseline (+noise)."""
    r = rng_for(p.pp, analyte)
    dp = DECIMALS[analyte]
    lln = max(lo for lo, _ in ranges)
    if analyte == "hemoglobin":
        base = r.uniform(12.6, 14.0) if p.sex == "F" else r.uniform(13.8, 15.6)
        noise = 0.25
        targets = {0: None, 1: (10.5, 11.6) if p.sex == "F" else (10.8, 12.4), 2: (8.8, 9.6)}
        dip = (0.3, 1.0)
    elif analyte == "wbc":
        base, noise = r.uniform(5.0, 7.8), 0.35
        targets = {0: None, 1: (3.3, 3.7), 2: (2.3, 2.7)}
        dip = (0.4, 1.5)
    else:
        base, noise = r.uniform(190, 310), 12.0
        targets = {0: None, 1: (100, 135)}
        dip = (20, 70)
    base = round(base, dp)
    floor0 = round(lln + MARGIN[analyte] + 10 ** -dp, dp)  # lowest grade-0 value
    if targets[target_grade] is None:
        target = round(max(floor0, base - r.uniform(*dip)), dp)
    else:
        target = round(r.uniform(*targets[target_grade]), dp)

    post = dates[1:]
    loads = [marrow_load(p, d) for d in post]
    eligible = [i for i, d in enumerate(post) if (days_since_cycle(p, d) or 0) in range(28, 57)]
    assert eligible, (p.pp, analyte, "no sample 4-8 weeks after a cycle")
    nadir = max(eligible, key=lambda i: (loads[i], -i))
    values = [base]
    for i, load in enumerate(loads):
        if i == nadir:
            v = target
        else:
            v = base - (base - target) * min(load / loads[nadir], 1.0) + r.uniform(-noise, noise)
            if v < target:  # never below the intended nadir: hover just above it
                v = target + r.uniform(0, noise)
            v = min(round(v, dp), round(base + noise, dp))
        values.append(v)
    return values


def creatinine_series(p: Patient, dates: list[date], target_grade: int,
                      ranges: list[tuple[float, float]]) -> list[float]:
    r = rng_for(p.pp, "creatinine")
    uln_min = min(hi for _, hi in ranges)
    uln_max = max(hi for _, hi in ranges)
    if target_grade == 0:
        base = r.randint(62, 78) if p.sex == "F" else r.randint(78, 96)
        return [base] + [max(45, base - r.randint(3, 12)) for _ in dates[1:]]
    # grade 1: above the ULN and the baseline, at most 1.5 x either
    base = r.randint(72, 78) if p.sex == "F" else r.randint(86, 94)
    lo, hi = max(uln_max, base) + 4, min(1.5 * base, 1.5 * uln_min) - 4
    assert lo <= hi, (p.pp, lo, hi)
    peak = r.randint(int(lo), int(hi))
    loads = [renal_load(p, d) for d in dates[1:]]
    top = max(range(len(loads)), key=lambda i: (loads[i], i))
    values = [base]
    for i, load in enumerate(loads):
        v = peak if i == top else round(base + (peak - base) * load / loads[top] + r.uniform(-4, 4))
        v = min(v, peak)
        if abs(v - base) < 3:
            v = base - 3 - r.randint(0, 4)
        values.append(v)
    return values


def transaminase_series(p: Patient, dates: list[date], analyte: str,
                        ranges: list[tuple[float, float]]) -> list[float]:
    r = rng_for(p.pp, analyte)
    cap = min(hi for _, hi in ranges) - MARGIN[analyte] - 1
    base = r.randint(16, 30) if analyte == "ast" else r.randint(12, 30)
    return [base] + [min(cap, max(8, base + r.randint(-6, 6))) for _ in dates[1:]]


def fmt(analyte: str, value: float) -> str:
    return f"{value:.{DECIMALS[analyte]}f}"


def lab_rows(p: Patient, defaults, plausible, counts: dict) -> list[list[str]]:
    dates = lab_dates(p)
    r = rng_for(p.pp, "labranges")
    n_empty = round(EMPTY_RANGE_SHARE * len(dates))
    empty = set(r.sample(range(len(dates)), n_empty))  # samples from an outside lab
    series = {}
    for analyte in ("hemoglobin", "wbc", "platelets", "creatinine", "ast", "alt"):
        hosp = lookup_range(HOSPITAL_RANGES, analyte, p.sex)
        dflt = lookup_range(defaults, analyte, p.sex)
        ranges = [hosp, dflt]
        target = TOXICITY.get(analyte, {}).get(p.pp, 0)
        if analyte in ("hemoglobin", "wbc", "platelets"):
            values = count_series(p, dates, analyte, target, ranges)
        elif analyte == "creatinine":
            values = creatinine_series(p, dates, target, ranges)
        else:
            values = transaminase_series(p, dates, analyte, ranges)
        baseline = values[0] if analyte == "creatinine" else None
        if analyte in ("hemoglobin", "wbc", "platelets"):  # not below the nadir
            low, high = min(values[1:]), math.inf
        else:  # not above the peak (creatinine) or the series maximum
            low, high = 0.0, max(values[1:])
        rn = rng_for(p.pp, analyte + ":edges")
        values = [nudge(analyte, values[0], band_edges(analyte, ranges, None), 0.0, math.inf, rn)] + \
            [nudge(analyte, v, band_edges(analyte, ranges, baseline), low, high, rn) for v in values[1:]]
        # asserts: same grade with the hospital's and the default range; baseline normal;
        # worst post-baseline grade as designed; plausible
        grades = []
        for i, v in enumerate(values):
            b = baseline if i else None
            g_h, g_d = grade(analyte, v, *hosp, b), grade(analyte, v, *dflt, b)
            assert g_h == g_d, (p.pp, analyte, v, g_h, g_d)
            lo, hi = plausible[analyte]
            assert lo <= v <= hi
            grades.append(g_h)
        assert grades[0] == 0, (p.pp, analyte, values[0])
        assert max(grades[1:]) == target, (p.pp, analyte, target, grades)
        counts[(analyte, target)] = counts.get((analyte, target), 0) + 1
        series[analyte] = (values, hosp)

    rows = []
    for i, d in enumerate(dates):
        for analyte, (values, (lo, hi)) in series.items():
            rng_cols = ["", ""] if i in empty else [fmt(analyte, lo), fmt(analyte, hi)]
            rows.append([p.patient_id, d.isoformat(), analyte, fmt(analyte, values[i]), UNITS[analyte], *rng_cols])
        if i == 0 and p.t1["cga_pre"]:
            rows.append([p.patient_id, d.isoformat(), "chromogranin_a", p.t1["cga_pre"], UNITS["chromogranin_a"], "", ""])
        if i == len(dates) - 1 and p.t1["cga_post"]:
            rows.append([p.patient_id, d.isoformat(), "chromogranin_a", p.t1["cga_post"], UNITS["chromogranin_a"], "", ""])
    return rows


# --------------------------------------------------------------------------------------


HEADERS = {
    "patients": ["patient_id", "full_name", "birth_date", "sex", "primary_site", "tumour_grade", "ki67_percent",
                 "prior_surgery", "prior_chemotherapy", "prior_radiotherapy", "hypertension", "diabetes",
                 "baseline_imaging", "krenning_score", "suvmax"],
    "metastases": ["patient_id", "site"],
    "cycles": ["patient_id", "cycle_number", "administration_date", "activity", "activity_unit",
               "amino_acid_infusion"],
    "labs": ["patient_id", "sample_date", "analyte", "value", "unit", "lln", "uln"],
    "performance_status": ["patient_id", "assessment_date", "ecog", "kps"],
    "tumour_assessments": ["patient_id", "assessment_date", "modality", "recist_response", "sum_of_diameters_mm"],
    "follow_up": ["patient_id", "last_contact_date", "vital_status", "death_date"],
}


def build(out: Path) -> dict[str, int]:
    table1 = read_table1()
    defaults, plausible = read_seed_ranges(), read_plausibility()
    used: set[str] = set()
    patients = [build_patient(int(t["paper_patient"]), t, used) for t in table1]
    files: dict[str, list[list[str]]] = {name: [] for name in HEADERS}
    tox_counts: dict = {}

    for p in patients:
        t = p.t1
        files["patients"].append([
            p.patient_id, f"Demo Patient {p.pp:02d}", p.birth_date.isoformat(), t["sex"], t["primary_site"], "", "",
            t["prior_surgery"], t["prior_chemotherapy"], t["prior_radiotherapy"], t["hypertension"], t["diabetes"],
            t["baseline_imaging"], t["krenning_score"], PATIENT1_SUVMAX if p.pp == 1 else "",
        ])
        for site in filter(None, t["metastases"].split(";")):
            files["metastases"].append([p.patient_id, site])
        for k, (d, mbq) in enumerate(p.cycles, start=1):
            files["cycles"].append([p.patient_id, str(k), d.isoformat(), gbq_text(mbq), "GBq", "yes"])
        files["labs"] += lab_rows(p, defaults, plausible, tox_counts)
        files["performance_status"] += performance_rows(p)
        files["tumour_assessments"] += tumour_rows(p)
        files["follow_up"].append([p.patient_id, p.end.isoformat(), "dead" if p.dead else "alive",
                                   p.end.isoformat() if p.dead else ""])

    check_design(patients, files, tox_counts)
    out.mkdir(parents=True, exist_ok=True)
    for name, header in HEADERS.items():
        with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(files[name])
    return {name: len(rows) for name, rows in files.items()}


def check_design(patients: list[Patient], files: dict[str, list[list[str]]], tox_counts: dict) -> None:
    """Whole-cohort invariants (the per-patient ones are asserted where built)."""
    for p in patients:
        dates = [d for d, _ in p.cycles]
        assert all(42 <= (b - a).days <= 56 for a, b in zip(dates, dates[1:])), p.pp
        assert FIRST_POSSIBLE <= dates[0] and dates[-1] <= DATA_CUTOFF, p.pp
        assert p.end <= DATA_CUTOFF and p.end > p.last_admin, p.pp
        assert p.birth_date < dates[0]
    pid = {p.patient_id: p for p in patients}
    for name, rows in files.items():
        assert len({tuple(r) for r in rows}) == len(rows), f"exact duplicate in {name}"
        for row in rows:
            p = pid[row[0]]
            for value in row[1:]:
                if len(value) == 10 and value[4] == "-" and value[7] == "-":
                    assert p.birth_date <= date.fromisoformat(value) <= p.end, (name, row)
    # Table 2
    expected = {("hemoglobin", 1): 7, ("hemoglobin", 2): 3, ("wbc", 1): 3, ("wbc", 2): 3,
                ("platelets", 1): 2, ("creatinine", 1): 2}
    for (analyte, g), n in tox_counts.items():
        if g:
            assert expected[(analyte, g)] == n, (analyte, g, n)
    # Kaplan-Meier median (product-limit, event = death) = 700 days
    os = sorted(((p.end - p.first).days, p.dead) for p in patients)
    s, median = 1.0, None
    for t in sorted({t for t, dead in os if dead}):
        at_risk = sum(1 for u, _ in os if u >= t)
        deaths = sum(1 for u, dead in os if u == t and dead)
        s *= 1 - deaths / at_risk
        if median is None and s <= 0.5:
            median = t
    assert median == 700 and sum(dead for _, dead in os) == 3, (median, os)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: raw/demo)")
    args = parser.parse_args()
    counts = build(args.out)
    for name, n in counts.items():
        print(f"{args.out / (name + '.csv')}: {n} rows")


if __name__ == "__main__":
    main()
