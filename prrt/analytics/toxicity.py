"""Toxicity summary: patients by worst post-baseline CTCAE grade per term (the paper's Table 2).

Input is a ``fct_toxicity``-like frame (patient_key, ctcae_term, worst_grade, and
treatment_emergent_grade for the treatment-emergent view), one row per patient x term. What
"treatment-emergent" means is defined once, in dbt (``fct_toxicity.treatment_emergent_grade``:
worse than the baseline grade, a missing baseline counting as 0); this module only counts. Percentages are of the cohort N, which should
be passed explicitly (patients without any graded lab are not in fct_toxicity); it
defaults to the number of distinct patients in the frame.

The table needs only the number of patients per term at each worst grade
(``grade_counts``), so on a large warehouse those counts come from a GROUP BY over the
mart (``catalog.ANALYTICS_QUERIES['toxicity_grade_counts']``) and ``toxicity_summary``
builds the same table from them (``worst_grade_counts`` picks the worst or the
treatment-emergent grade of such counts).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

GRADES: tuple[int, ...] = (1, 2, 3, 4)


EMERGENT_GRADE = "treatment_emergent_grade"  # fct_toxicity's column (dbt defines the rule)


def _grade_column(treatment_emergent_only: bool) -> str:
    return EMERGENT_GRADE if treatment_emergent_only else "worst_grade"


def worst_grade_per_patient_term(fct_toxicity: pd.DataFrame, *, treatment_emergent_only: bool = False) -> pd.DataFrame:
    """patient_key, ctcae_term, worst_grade (one row per pair; max if the frame repeats a pair).

    ``treatment_emergent_only``: the grade is the frame's ``treatment_emergent_grade`` (0 unless
    worse than baseline), returned as worst_grade.
    """
    column = _grade_column(treatment_emergent_only)
    frame = fct_toxicity[["patient_key", "ctcae_term"]].assign(
        worst_grade=pd.to_numeric(fct_toxicity[column], errors="coerce"))
    return frame.groupby(["patient_key", "ctcae_term"], as_index=False)["worst_grade"].max()


GRADE_COUNT_COLUMNS = ["ctcae_term", "worst_grade", "n"]


def grade_counts(fct_toxicity: pd.DataFrame, *, treatment_emergent_only: bool = False) -> pd.DataFrame:
    """ctcae_term, worst_grade, n: patients per term at each worst grade (worst_grade NaN:
    none of their post-baseline values could be graded). Every term of the frame appears."""
    worst = worst_grade_per_patient_term(fct_toxicity, treatment_emergent_only=treatment_emergent_only)
    counts = worst.groupby(["ctcae_term", "worst_grade"], dropna=False).size().rename("n").reset_index()
    return counts[GRADE_COUNT_COLUMNS]


def worst_grade_counts(counts: pd.DataFrame, *, treatment_emergent_only: bool = False) -> pd.DataFrame:
    """ctcae_term, worst_grade, n from patient counts by term, worst grade and treatment-emergent
    grade (columns ctcae_term, worst_grade, treatment_emergent_grade, n; one count per patient x
    term, as ``fct_toxicity`` has one row per pair). ``treatment_emergent_only``: the counts by
    treatment-emergent grade, as worst_grade. Rows are not merged: ``toxicity_summary`` adds up
    the counts of a term's repeated grades."""
    worst = pd.to_numeric(counts[_grade_column(treatment_emergent_only)], errors="coerce")
    return counts.assign(worst_grade=worst)[GRADE_COUNT_COLUMNS]


def toxicity_table(
    fct_toxicity: pd.DataFrame,
    n_patients: int | None = None,
    *,
    grades: Sequence[int] = GRADES,
    treatment_emergent_only: bool = False,
    decimals: int | None = 1,
) -> pd.DataFrame:
    """Patients by worst post-baseline grade, per CTCAE term.

    Columns: ctcae_term, n_patients (cohort N), n_assessed (patients with a gradable
    post-baseline value of the term: a non-null worst_grade), grade_<g>_n and
    grade_<g>_pct for each grade, any_grade_n/pct (grade >= 1) and grade_3plus_n/pct.
    Each patient counts once per term, at their worst grade. Rows are every term in the
    frame (a term never measured has n_assessed = 0), ordered by any-grade count
    (descending) then term.
    """
    if n_patients is None:
        n_patients = int(fct_toxicity["patient_key"].nunique())
    counts = grade_counts(fct_toxicity, treatment_emergent_only=treatment_emergent_only)
    return toxicity_summary(counts, n_patients, grades=grades, decimals=decimals)


def toxicity_summary(
    counts: pd.DataFrame,
    n_patients: int,
    *,
    grades: Sequence[int] = GRADES,
    decimals: int | None = 1,
) -> pd.DataFrame:
    """``toxicity_table`` from the patient counts per term and worst grade (``grade_counts``
    columns: ctcae_term, worst_grade, n; a term may repeat a grade, its counts add up)."""
    if n_patients <= 0:
        raise ValueError("n_patients must be positive")
    counts = counts[GRADE_COUNT_COLUMNS].dropna(subset=["ctcae_term"])
    terms = sorted(counts["ctcae_term"].unique())
    rows = []
    for term in terms:
        of_term = counts[counts["ctcae_term"] == term]
        grade = pd.to_numeric(of_term["worst_grade"], errors="coerce")
        n = of_term["n"].astype("int64")
        row: dict[str, object] = {"ctcae_term": term, "n_patients": n_patients,
                                  "n_assessed": int(n[grade.notna()].sum())}
        counts_by_grade = {g: int(n[grade == g].sum()) for g in grades}
        counts_any = int(n[grade >= 1].sum())
        counts_3plus = int(n[grade >= 3].sum())
        for g in grades:
            row[f"grade_{g}_n"] = counts_by_grade[g]
            row[f"grade_{g}_pct"] = 100.0 * counts_by_grade[g] / n_patients
        row["any_grade_n"] = counts_any
        row["any_grade_pct"] = 100.0 * counts_any / n_patients
        row["grade_3plus_n"] = counts_3plus
        row["grade_3plus_pct"] = 100.0 * counts_3plus / n_patients
        rows.append(row)
    columns = ["ctcae_term", "n_patients", "n_assessed"]
    for grade in grades:
        columns += [f"grade_{grade}_n", f"grade_{grade}_pct"]
    columns += ["any_grade_n", "any_grade_pct", "grade_3plus_n", "grade_3plus_pct"]
    table = pd.DataFrame(rows, columns=columns)
    if decimals is not None:
        pct = [c for c in columns if c.endswith("_pct")]
        table[pct] = table[pct].round(decimals)
    table = table.sort_values(["any_grade_n", "ctcae_term"], ascending=[False, True], kind="stable")
    return table.reset_index(drop=True)
