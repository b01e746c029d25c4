"""dim_patient's derived groups and their landmark versions on the demo warehouse, against values
derived by hand from the export files (raw/demo), not from the warehouse's own models.

The derivation, per patient_id (patient_key = HMAC of it with the development key, as ingestion does):
- day = date - the first administration's date; the landmark is 6 x 30.4375 = 182.625 days
  (dbt vars landmark_months and days_per_month); "before the landmark" is day < 182.625;
- cycles: the rows of cycles.csv (every activity is in GBq); '>= 4' from 4 cycles, else '<= 3';
- toxicity: a post-baseline sample (day > 0) of grade >= 2 in CTCAE v4.03 is hemoglobin < 10.0 g/dL
  (anemia), WBC < 3.0 or platelets < 75 x10^9/L; the demo's other graded analytes never reach
  grade 2 (raw/README.md: creatinine grade 1 at most, AST/ALT never above the ULN), and its values
  keep clear of every boundary;
- best overall response before the landmark (unconfirmed, RECIST 1.1 as the paper): the CT/MRI
  assessments with 0 < day < 182.625 up to and including the first PD, best of CR > PR > SD > PD,
  NE ignored and SD only at day >= 42; 'CR/PR' for CR or PR, 'SD/PD' for SD or PD, else no group.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict

from prrt.pseudonym import DEVELOPMENT_KEY, patient_key

from .conftest import DEMO_EXPORT

LANDMARK_DAYS = 6 * 30.4375
RANK = {"CR": 1, "PR": 2, "SD": 3, "PD": 4}


def rows(name: str) -> list[dict[str, str]]:
    with open(DEMO_EXPORT / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def day(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def expected_by_hand() -> dict[str, dict]:
    cycles = defaultdict(list)
    for row in rows("cycles.csv"):
        assert row["activity_unit"] == "GBq"
        cycles[row["patient_id"]].append((day(row["administration_date"]), float(row["activity"])))
    first = {pid: min(d for d, _ in given) for pid, given in cycles.items()}

    grade_2 = defaultdict(lambda: [False, False])  # patient -> [ever post-baseline, before the landmark]
    limits = {"hemoglobin": 10.0, "wbc": 3.0, "platelets": 75.0}
    for row in rows("labs.csv"):
        pid, analyte = row["patient_id"], row["analyte"]
        if pid not in first or analyte not in limits:
            continue
        days = (day(row["sample_date"]) - first[pid]).days
        if days > 0 and float(row["value"]) < limits[analyte]:
            grade_2[pid][0] = True
            grade_2[pid][1] |= days < LANDMARK_DAYS

    assessments = defaultdict(list)
    for row in rows("tumour_assessments.csv"):
        pid = row["patient_id"]
        if pid in first and row["modality"] in ("ct", "mri"):
            days = (day(row["assessment_date"]) - first[pid]).days
            if 0 < days < LANDMARK_DAYS:
                assessments[pid].append((days, row["recist_response"]))

    def bor(seen: list[tuple[int, str]]) -> str | None:
        seen = sorted(seen)
        pd_days = [d for d, r in seen if r == "PD"]
        window = [(d, r) for d, r in seen if not pd_days or d <= pd_days[0]]
        qualifying = [r for d, r in window if r in RANK and (r != "SD" or d >= 42)]
        return min(qualifying, key=RANK.get) if qualifying else ("NE" if seen else None)

    def cycles_group(n: int) -> str:
        return ">= 4" if n >= 4 else "<= 3"

    def response_group(response: str | None) -> str | None:
        return {"CR": "CR/PR", "PR": "CR/PR", "SD": "SD/PD", "PD": "SD/PD"}.get(response)

    expected = {}
    for row in rows("patients.csv"):
        pid = row["patient_id"]
        given = cycles[pid]
        before = [a for d, a in given if (d - first[pid]).days < LANDMARK_DAYS]
        at_landmark = bor(assessments[pid])
        expected[patient_key(pid, DEVELOPMENT_KEY.encode())] = {
            "cycles_group": cycles_group(len(given)),
            "n_cycles_at_landmark": len(before),
            "cumulative_activity_gbq_at_landmark": round(sum(before), 4),
            "cycles_group_at_landmark": cycles_group(len(before)),
            "best_overall_response_at_landmark": at_landmark,
            "best_response_group_at_landmark": response_group(at_landmark),
            "toxicity_grade_group": ">= 2" if grade_2[pid][0] else "< 2",
            "toxicity_grade_group_at_landmark": ">= 2" if grade_2[pid][1] else "< 2",
            "ki67_group": None,  # the demo export has no Ki-67 (raw/README.md: not reported in the paper)
        }
    return expected


def test_groups_equal_the_hand_derivation_from_the_export(demo_db):
    columns = list(next(iter(expected_by_hand().values())))
    built = {key: dict(zip(columns, values, strict=True)) for key, *values in demo_db.execute(
        f"SELECT patient_key, {', '.join(columns)} FROM marts.dim_patient").fetchall()}
    expected = expected_by_hand()
    assert set(built) == set(expected)
    for key in expected:
        got = built[key] | {"cumulative_activity_gbq_at_landmark": round(built[key]["cumulative_activity_gbq_at_landmark"], 4)}
        assert got == expected[key], key


def test_group_sizes(demo_db):
    """The sizes the paper's figures give: 8 patients with 4-7 cycles (Table 1's cycles, median 3.5);
    13 CR/PR and 3 SD/PD (CR 2, PR 11, SD 1, PD 2); grade >= 2 in patients 4, 5, 8 and 12 (Table 2's
    grade 2 anemia and leucopenia as placed in raw/README.md)."""
    def sizes(column: str) -> dict:
        return dict(demo_db.execute(f"SELECT {column}, count(*) FROM marts.dim_patient GROUP BY 1").fetchall())

    assert sizes("cycles_group") == {"<= 3": 8, ">= 4": 8}
    assert sizes("best_response_group") == {"CR/PR": 13, "SD/PD": 3}
    assert sizes("toxicity_grade_group") == {">= 2": 4, "< 2": 12}
    assert sizes("ki67_group") == {None: 16}
