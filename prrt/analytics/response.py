"""Tumour response rates (RECIST 1.1 categories) with exact Clopper-Pearson intervals.

ORR = (CR + PR) / N, DCR = (CR + PR + SD) / N. By default N is every patient in the
column (intention to treat): a missing or NE best response counts in the denominator
as a non-responder. ``evaluable_only=True`` restricts N to patients with CR/PR/SD/PD.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest

RECIST_CATEGORIES: tuple[str, ...] = ("CR", "PR", "SD", "PD")
OBJECTIVE_RESPONSE: frozenset[str] = frozenset({"CR", "PR"})
DISEASE_CONTROL: frozenset[str] = frozenset({"CR", "PR", "SD"})


@dataclass(frozen=True)
class Proportion:
    """k of n with its exact (Clopper-Pearson) confidence interval."""

    label: str
    k: int
    n: int
    proportion: float
    ci_lower: float
    ci_upper: float
    confidence: float = 0.95
    method: str = "clopper-pearson"


@dataclass(frozen=True)
class ResponseRates:
    orr: Proportion
    dcr: Proportion
    counts: dict[str, int]  # CR, PR, SD, PD, NE/missing
    n: int
    n_evaluable: int

    def as_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"measure": p.label, "k": p.k, "n": p.n, "proportion": p.proportion,
                 "ci_lower": p.ci_lower, "ci_upper": p.ci_upper, "method": p.method}
                for p in (self.orr, self.dcr)
            ]
        )


def clopper_pearson(k: int, n: int, confidence: float = 0.95, label: str = "") -> Proportion:
    """Exact binomial CI (scipy ``binomtest(...).proportion_ci(method='exact')``)."""
    if n <= 0:
        raise ValueError("n must be positive")
    if not 0 <= k <= n:
        raise ValueError("k must be between 0 and n")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return Proportion(label, int(k), int(n), k / n, float(ci.low), float(ci.high), confidence)


def _normalise(responses: Iterable[object]) -> pd.Series:
    """Upper-case, stripped categories (blank or missing: None), each distinct value normalised once."""
    series = responses if isinstance(responses, pd.Series) else pd.Series(list(responses), dtype="object")
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    labels = [str(v).strip().upper() or None for v in uniques]
    return pd.Series(np.array([*labels, None], dtype=object)[codes], dtype="object")


def response_rates(
    responses: Iterable[object], *, weights: Iterable[int] | None = None, evaluable_only: bool = False,
    confidence: float = 0.95,
) -> ResponseRates:
    """ORR and DCR for a column of best overall responses ('CR', 'PR', 'SD', 'PD', 'NE' or missing).

    ``weights``: patients per value, for value counts (e.g. a GROUP BY in the warehouse) instead of rows."""
    values = _normalise(responses)
    weight = pd.Series(np.ones(len(values), np.int64) if weights is None else np.asarray(list(weights), np.int64))
    if len(weight) != len(values):
        raise ValueError("weights must have one value per response")
    unknown = sorted(set(values[weight.to_numpy() > 0].dropna()) - set(RECIST_CATEGORIES) - {"NE"})
    if unknown:
        raise ValueError(f"unexpected response categories: {unknown}")
    counts = {category: int(weight[(values == category).to_numpy()].sum()) for category in RECIST_CATEGORIES}
    counts["NE/missing"] = int(weight[(~values.isin(RECIST_CATEGORIES)).to_numpy()].sum())
    n_evaluable = sum(counts[c] for c in RECIST_CATEGORIES)
    n = n_evaluable if evaluable_only else int(weight.sum())
    orr = clopper_pearson(sum(counts[c] for c in OBJECTIVE_RESPONSE), n, confidence, "ORR")
    dcr = clopper_pearson(sum(counts[c] for c in DISEASE_CONTROL), n, confidence, "DCR")
    return ResponseRates(orr=orr, dcr=dcr, counts=counts, n=n, n_evaluable=n_evaluable)


# definition -> dim_patient column of best overall responses
RESPONSE_DEFINITIONS: dict[str, str] = {
    "unconfirmed": "best_overall_response",
    "confirmed": "confirmed_best_overall_response",
}

RESPONSE_RATE_COLUMNS = ["definition", "source_column", "measure", "k", "n", "proportion", "ci_lower", "ci_upper",
                         "confidence", "ci_method", "n_cr", "n_pr", "n_sd", "n_pd", "n_ne", "n_evaluable"]


def response_rates_table(
    patients: pd.DataFrame,
    definitions: dict[str, str] = RESPONSE_DEFINITIONS,
    *,
    evaluable_only: bool = False,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """ORR and DCR for each definition of best overall response (default: unconfirmed, as
    in the paper, and RECIST 1.1-confirmed), two rows per definition whose column exists.

    Columns: definition, source_column, measure ('ORR' / 'DCR'), k, n, proportion,
    ci_lower, ci_upper (Clopper-Pearson), confidence, ci_method, the category counts
    n_cr, n_pr, n_sd, n_pd, n_ne (NE or missing) and n_evaluable (CR + PR + SD + PD).
    """
    rows = []
    for definition, column in definitions.items():
        if column not in patients:
            continue
        rates = response_rates(patients[column], evaluable_only=evaluable_only, confidence=confidence)
        counts = {
            "n_cr": rates.counts["CR"], "n_pr": rates.counts["PR"], "n_sd": rates.counts["SD"],
            "n_pd": rates.counts["PD"], "n_ne": rates.counts["NE/missing"], "n_evaluable": rates.n_evaluable,
        }
        for p in (rates.orr, rates.dcr):
            rows.append({"definition": definition, "source_column": column, "measure": p.label, "k": p.k, "n": p.n,
                         "proportion": p.proportion, "ci_lower": p.ci_lower, "ci_upper": p.ci_upper,
                         "confidence": p.confidence, "ci_method": p.method, **counts})
    return pd.DataFrame(rows, columns=RESPONSE_RATE_COLUMNS)


@dataclass(frozen=True)
class TimeSummary:
    """Median, quartiles and range of uncensored times (e.g. time to response, months)."""

    n: int
    median: float | None
    q1: float | None
    q3: float | None
    minimum: float | None
    maximum: float | None


def time_to_response(times: Iterable[float], *, weights: Iterable[int] | None = None) -> TimeSummary:
    """Time to response (TTR) of the responders: every row is an event (fct_time_to_event's TTR has
    no censoring), so it is described by its median, quartiles (linear interpolation: numpy's and
    R's ``quantile`` type 7) and range. ``weights``: patients per time, for counts instead of rows.
    Missing times are ignored."""
    values = np.asarray(list(times), dtype=float)
    counts = np.ones(len(values), np.int64) if weights is None else np.asarray(list(weights), np.int64)
    if len(counts) != len(values):
        raise ValueError("weights must have one value per time")
    keep = ~np.isnan(values) & (counts > 0)
    values = np.repeat(values[keep], counts[keep])
    if not len(values):
        return TimeSummary(0, None, None, None, None, None)
    q = np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0])
    return TimeSummary(len(values), float(q[2]), float(q[1]), float(q[3]), float(q[0]), float(q[4]))
