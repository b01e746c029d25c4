"""Cohort description (the paper's Table 1 summary line): medians, ranges and counts."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class MedianRange:
    median: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, values: pd.Series) -> MedianRange | None:
        values = values.dropna()
        if values.empty:
            return None
        return cls(float(values.median()), float(values.min()), float(values.max()))

    def __str__(self) -> str:
        return f"{self.median:g} ({self.minimum:g}-{self.maximum:g})"


@dataclass(frozen=True)
class CohortSummary:
    n_patients: int
    sex_counts: dict[str, int]
    age: MedianRange | None
    cycles: MedianRange | None
    cumulative_activity_gbq: MedianRange | None
    ecog_pre: float | None
    ecog_post: float | None
    kps_pre: float | None
    kps_post: float | None
    best_response_counts: dict[str, int]
    deaths: int


def _median(values: pd.Series) -> float | None:
    values = values.dropna()
    return None if values.empty else float(values.median())


def summarise_cohort(patients: pd.DataFrame) -> CohortSummary:
    """``patients``: rows of ``marts.dim_patient`` (one per patient)."""
    treated = patients[patients["n_cycles"].fillna(0) > 0]
    return CohortSummary(
        n_patients=len(patients),
        sex_counts={k: int(v) for k, v in patients["sex"].value_counts().sort_index().items()},
        age=MedianRange.of(patients["age_at_first_cycle"]),
        cycles=MedianRange.of(treated["n_cycles"]),
        cumulative_activity_gbq=MedianRange.of(treated["cumulative_activity_gbq"]),
        ecog_pre=_median(patients["ecog_pre"]),
        ecog_post=_median(patients["ecog_post"]),
        kps_pre=_median(patients["kps_pre"]),
        kps_post=_median(patients["kps_post"]),
        best_response_counts={k: int(v) for k, v in patients["best_overall_response"].value_counts().items()},
        deaths=int(patients["os_event"].fillna(0).sum()),
    )
