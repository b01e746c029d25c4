"""Kaplan-Meier estimates, R-compatible median confidence intervals, and the log-rank test.

The estimate itself comes from lifelines' ``KaplanMeierFitter``. Pointwise confidence
bands are computed here from the Greenwood variance so that all three of R survfit's
``conf.type`` choices are available:

* ``"log-log"``  exp(-exp(log(-log S) +/- z se / log S))   (lifelines' only band; R's default
  in many packages, and what SAS calls LOGLOG)
* ``"log"``      S * exp(+/- z se), upper clipped at 1      (R survfit's default)
* ``"plain"``    S +/- z se S, clipped to [0, 1]

where ``se`` is the Greenwood standard error of the cumulative hazard,
sqrt(sum d / (n (n - d))), i.e. R's ``fit$std.err``.

Edge values follow R's ``survfit_confint``: the log and log-log bands are undefined
(NaN) where S = 0, the log-log band is undefined where S = 1, and all bands are
NaN where S = 0 because the Greenwood term d / (n (n - d)) is infinite once n = d.
(lifelines instead zeroes that term and back-fills undefined band values with 1.0,
which is why its band is not used here.) In the tidy curve the degenerate band at
S = 1 is reported as [1, 1].

The median and its confidence interval follow R's ``print.survfit`` /
``summary(fit)$table`` (``survival:::survmean``): the median is the first time the
curve is <= 0.5 (with a tolerance of sqrt(machine eps)); if the curve equals 0.5 on
a flat stretch, the median is the midpoint between the start of that stretch and the
next time the curve drops. The lower (upper) limit is the same rule applied to the
lower (upper) pointwise band. A median or limit that is never reached is ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from scipy import stats

from .catalog import MEDIAN_CI_METHODS

CONF_TYPES: tuple[str, ...] = ("log-log", "log", "plain")
# the median CI methods of analytics.km_median: R survfit's three conf.types, then SPSS's
# median +/- z SE (``KaplanMeier.spss_median``)
assert MEDIAN_CI_METHODS == (*CONF_TYPES, "spss")
# SPSS's half-width of the survival window over which the density at a percentile is estimated
SPSS_DENSITY_EPSILON = 0.05

# R: tolerance <- .Machine$double.eps^.5 (as in all.equal)
_R_TOLERANCE = float(np.sqrt(np.finfo(float).eps))


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def _none_if_nan(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


@dataclass(frozen=True)
class MedianSurvival:
    """Median survival time with its confidence interval (R ``print.survfit`` semantics)."""

    median: float | None
    ci_lower: float | None
    ci_upper: float | None
    conf_type: str
    confidence: float = 0.95


@dataclass(frozen=True)
class LogRankResult:
    """Log-rank (Mantel-Haenszel) test across k groups, as R's ``survdiff(rho = 0)``."""

    test_statistic: float
    degrees_of_freedom: int
    p_value: float
    groups: tuple[str, ...]
    n: int
    events: int


@dataclass
class KaplanMeier:
    """A fitted Kaplan-Meier curve.

    ``table`` has one row per distinct observed time (events and censorings, as R's
    survfit), plus time 0: time, at_risk, events, censored, survival, std_err
    (Greenwood se of the cumulative hazard, R's ``std.err``).
    """

    n: int
    events: int
    table: pd.DataFrame
    alpha: float = 0.05
    fitter: KaplanMeierFitter | None = field(default=None, repr=False)

    @property
    def confidence(self) -> float:
        return 1 - self.alpha

    # ------------------------------------------------------------------ bands
    def band(self, conf_type: str = "log-log") -> pd.DataFrame:
        """Pointwise (1 - alpha) band at every time of ``table``: columns lower, upper."""
        lower, upper = _confidence_band(
            self.table["survival"].to_numpy(float),
            self.table["std_err"].to_numpy(float),
            conf_type,
            _z(self.alpha),
        )
        return pd.DataFrame({"lower": lower, "upper": upper}, index=self.table.index)

    # ------------------------------------------------------------------ median
    def median(self, conf_type: str = "log-log") -> MedianSurvival:
        """Median survival and its CI under R survfit's ``conf.type``, or SPSS's
        median +/- z SE for ``conf_type = 'spss'`` (``spss_median``)."""
        if conf_type == "spss":
            return self.spss_median()
        band = self.band(conf_type)
        time = self.table["time"].to_numpy(float)
        return MedianSurvival(
            median=_r_first_below_half(self.table["survival"].to_numpy(float), time),
            ci_lower=_r_first_below_half(band["lower"].to_numpy(float), time),
            ci_upper=_r_first_below_half(band["upper"].to_numpy(float), time),
            conf_type=conf_type,
            confidence=self.confidence,
        )

    def spss_median(self) -> MedianSurvival:
        """The median and its CI as SPSS's Kaplan-Meier procedure (KM) reports them: the median
        is the first event time at which S(t) <= 0.5 (no midpoint rule), and the interval is
        median +/- z SE with

            SE(t_50) = SE(S(t_50)) / f(t_50),   f(t_50) = (S(u) - S(l)) / (l - u),
            u = max{t_j : S(t_j) >= 0.5 + eps},  l = min{t_j : S(t_j) <= 0.5 - eps},  eps = 0.05,

        over the event times t_j (and time 0, S = 1), where SE(S) = S sqrt(sum d / (n (n - d)))
        is Greenwood's standard error of S (SPSS's "Std. Error" of the cumulative proportion
        surviving) and f a finite-difference estimate of the density of the survival time at
        the median. This is the large-sample percentile standard error of Collett (Modelling
        Survival Data in Medical Research, 1994, section 2.4), which IBM SPSS Statistics
        Algorithms' KM chapter ("Estimation of percentiles") uses and which Marques de Sa
        (Applied Statistics Using SPSS, STATISTICA, MATLAB and R, 2nd ed. 2007, section 9.2,
        eq. 9.17) describes for SPSS's KM output. NaN (None) limits where the median or u or l
        does not exist (the curve does not drop to 0.45). The lower limit may be negative
        (SPSS prints it so; it is not clipped)."""
        z = _z(self.alpha)
        table = self.table
        event = (table["events"].to_numpy() > 0) | (table["time"].to_numpy(float) == 0)
        time = table["time"].to_numpy(float)[event]
        surv = table["survival"].to_numpy(float)[event]
        se_surv = surv * table["std_err"].to_numpy(float)[event]
        below = np.flatnonzero(surv <= 0.5 + _R_TOLERANCE)
        if below.size == 0:
            return MedianSurvival(None, None, None, "spss", self.confidence)
        i = int(below[0])
        median = float(time[i])
        upper_side = np.flatnonzero(surv >= 0.5 + SPSS_DENSITY_EPSILON - _R_TOLERANCE)
        lower_side = np.flatnonzero(surv <= 0.5 - SPSS_DENSITY_EPSILON + _R_TOLERANCE)
        if upper_side.size == 0 or lower_side.size == 0 or not np.isfinite(se_surv[i]):
            return MedianSurvival(median, None, None, "spss", self.confidence)
        u, l = int(upper_side[-1]), int(lower_side[0])
        density = (surv[u] - surv[l]) / (time[l] - time[u])
        se = float(se_surv[i] / density)
        return MedianSurvival(median, median - z * se, median + z * se, "spss", self.confidence)

    def medians(self, conf_types: Iterable[str] = CONF_TYPES) -> dict[str, MedianSurvival]:
        return {conf_type: self.median(conf_type) for conf_type in conf_types}

    # ------------------------------------------------------------------ survival at t
    def survival_at(self, times: Sequence[float], conf_type: str = "log-log") -> pd.DataFrame:
        """S(t) with CI and counts, as R's ``summary(fit, times = ...)``.

        survival and band are those of the last observed time <= t; at_risk is the number
        still under observation at t (time >= t); events and censored are cumulative
        counts over times <= t (R's n.event / n.censor summed from time 0, so a patient
        censored exactly at t is both censored and at risk, as in R). Times after the
        last observed time give NaN survival and band (R drops them unless
        ``extend = TRUE``), 0 at risk and the cohort's total events and censorings.
        """
        band = self.band(conf_type)
        time = self.table["time"].to_numpy(float)
        cumulative_events = np.cumsum(self.table["events"].to_numpy("int64"))
        cumulative_censored = np.cumsum(self.table["censored"].to_numpy("int64"))
        # still under observation at t = removed at a time >= t (the table has every distinct time)
        removed = (self.table["events"] + self.table["censored"]).to_numpy("int64")
        removed_from = np.cumsum(removed[::-1])[::-1]
        last = time.max()
        rows = []
        for t in times:
            t = float(t)
            first = int(np.searchsorted(time, t, side="left"))
            at_risk = int(removed_from[first]) if first < len(time) else 0
            i = int(np.searchsorted(time, t, side="right")) - 1
            if i < 0:  # before time 0: nobody has left yet
                rows.append((t, 1.0, 1.0, 1.0, at_risk, 0, 0))
                continue
            events, censored = int(cumulative_events[i]), int(cumulative_censored[i])
            if t > last:
                rows.append((t, np.nan, np.nan, np.nan, at_risk, events, censored))
                continue
            surv = float(self.table["survival"].iloc[i])
            lo, hi = float(band["lower"].iloc[i]), float(band["upper"].iloc[i])
            if surv == 1.0 and not np.isfinite(lo):
                lo = hi = 1.0
            rows.append((t, surv, lo, hi, at_risk, events, censored))
        return pd.DataFrame(rows, columns=["time", "survival", "ci_lower", "ci_upper", "at_risk", "events", "censored"])

    # ------------------------------------------------------------------ tidy curve
    def curve(self, conf_type: str = "log-log") -> pd.DataFrame:
        """The step curve as a tidy table: time, survival, ci_lower, ci_upper, at_risk, events, censored."""
        band = self.band(conf_type)
        out = self.table[["time", "survival"]].copy()
        out["ci_lower"] = band["lower"]
        out["ci_upper"] = band["upper"]
        flat_top = (out["survival"] == 1.0) & out["ci_lower"].isna()
        out.loc[flat_top, ["ci_lower", "ci_upper"]] = 1.0
        for column in ("at_risk", "events", "censored"):
            out[column] = self.table[column].astype("int64")
        return out.reset_index(drop=True)



def _array(values: Iterable[float]) -> np.ndarray:
    return np.asarray(list(values) if not hasattr(values, "__array__") else values, dtype=float)


def _counts(weights: Iterable[float] | None, size: int) -> np.ndarray | None:
    """Whole, non-negative case weights (patients per row of grouped data), or None."""
    if weights is None:
        return None
    weights = _array(weights)
    if weights.shape != (size,):
        raise ValueError("weights must have one value per observation")
    if np.isnan(weights).any() or (weights < 0).any() or (weights != np.round(weights)).any():
        raise ValueError("weights must be whole numbers of patients (>= 0)")
    return weights


def kaplan_meier(
    durations: Iterable[float], events: Iterable[float], *, weights: Iterable[float] | None = None,
    alpha: float = 0.05,
) -> KaplanMeier:
    """Fit a Kaplan-Meier curve (lifelines) and attach the Greenwood standard error.

    ``events``: 1 = event (death), 0 = censored. NaNs are not allowed; drop them first.
    ``weights``: patients per row, for grouped data (one row per distinct time and status
    with its count): the same fit as the rows repeated, without a million rows.
    """
    durations = _array(durations)
    events = _array(events)
    if durations.shape != events.shape:
        raise ValueError("durations and events must have the same length")
    weights = _counts(weights, durations.size)
    if weights is not None:  # rows of no patient are not observations
        keep = weights > 0
        durations, events, weights = durations[keep], events[keep], weights[keep]
    if durations.size == 0:
        raise ValueError("Kaplan-Meier needs at least one observation")
    if np.isnan(durations).any() or np.isnan(events).any():
        raise ValueError("durations/events contain NaN; drop incomplete rows first")
    if not np.isin(events, (0, 1)).all():
        raise ValueError("events must be 0 (censored) or 1 (event)")

    fitter = KaplanMeierFitter(alpha=alpha).fit(durations, event_observed=events, weights=weights)
    et = fitter.event_table
    n_risk = et["at_risk"].to_numpy(float)
    n_event = et["observed"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Greenwood: d / (n (n - d)); infinite when everyone at risk dies (S becomes 0)
        increment = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
    increment = np.where(np.isnan(increment), np.inf, increment)
    table = pd.DataFrame(
        {
            "time": et.index.to_numpy(float),
            "at_risk": et["at_risk"].to_numpy("int64"),
            "events": et["observed"].to_numpy("int64"),
            "censored": et["censored"].to_numpy("int64"),
            "survival": fitter.survival_function_.loc[et.index].iloc[:, 0].to_numpy(float),
            "std_err": np.sqrt(np.cumsum(increment)),
        }
    )
    n = int(durations.size) if weights is None else int(weights.sum())
    n_events = int(events.sum()) if weights is None else int((events * weights).sum())
    return KaplanMeier(n=n, events=n_events, table=table, alpha=alpha, fitter=fitter)


def _confidence_band(surv: np.ndarray, se: np.ndarray, conf_type: str, z: float) -> tuple[np.ndarray, np.ndarray]:
    """R survival:::survfit_confint (logse = TRUE) for one curve."""
    surv = np.asarray(surv, dtype=float)
    se = np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            half = se * surv * z
            lower = np.maximum(surv - half, 0.0)
            upper = np.minimum(surv + half, 1.0)
            # R's pmax/pmin propagate NaN (0 * Inf at S = 0)
            bad = np.isnan(half)
            lower[bad] = np.nan
            upper[bad] = np.nan
        elif conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            lower = np.exp(np.log(xx) - z * se)
            upper = np.minimum(np.exp(np.log(xx) + z * se), 1.0)
            upper[np.isnan(xx)] = np.nan
        elif conf_type == "log-log":
            xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
            se2 = z * se / np.log(xx)
            lower = np.exp(-np.exp(np.log(-np.log(xx)) - se2))
            upper = np.exp(-np.exp(np.log(-np.log(xx)) + se2))
        else:
            raise ValueError(f"conf_type must be one of {CONF_TYPES}, got {conf_type!r}")
    lower[~np.isfinite(se)] = np.nan
    upper[~np.isfinite(se)] = np.nan
    return lower, upper


def _r_first_below_half(y: np.ndarray, x: np.ndarray) -> float | None:
    """R survival:::survmean's ``minmin``: first x where the curve y is <= 0.5.

    Keeps the points with y < 0.5 + tol (NaNs dropped). If the first of them is 0.5
    within tol and the curve drops further later, return the midpoint between its x and
    the x of the first later point with a smaller y (the 'middle of the flat' rule).
    """
    keep = ~np.isnan(y) & (y < 0.5 + _R_TOLERANCE)
    if not keep.any():
        return None
    x, y = x[keep], y[keep]
    if abs(y[0] - 0.5) < _R_TOLERANCE and (y < y[0]).any():
        return float((x[0] + x[np.argmax(y < y[0])]) / 2)
    return float(x[0])


# ---------------------------------------------------------------------------- log-rank
def logrank(
    durations: Iterable[float], events: Iterable[float], groups: Iterable[object], *,
    weights: Iterable[float] | None = None,
) -> LogRankResult:
    """Log-rank test of equal survival across the groups (lifelines ``multivariate_logrank_test``).

    Rows with a missing group are dropped. Needs at least two groups with data; with no
    events at all the test is undefined and NaNs are returned. ``weights``: patients per
    row, for grouped data (as in ``kaplan_meier``).
    """
    t, e = np.asarray(durations, float), np.asarray(events, float)
    w = _counts(weights, t.size)
    frame = pd.DataFrame({"t": t, "e": e, "g": list(groups), "w": np.ones(t.size) if w is None else w})
    frame = frame.dropna()
    frame = frame[frame["w"] > 0]
    labels = tuple(str(g) for g in pd.unique(frame["g"]))
    if len(labels) < 2:
        raise ValueError("log-rank needs at least two groups with data")
    dof = len(labels) - 1
    n = int(frame["w"].sum())
    n_events = int((frame["e"] * frame["w"]).sum())
    if n_events == 0:
        return LogRankResult(np.nan, dof, np.nan, labels, n, 0)
    result = multivariate_logrank_test(frame["t"], frame["g"].astype(str), frame["e"],
                                       weights=None if w is None else frame["w"])
    return LogRankResult(
        test_statistic=float(result.test_statistic),
        degrees_of_freedom=int(result.degrees_of_freedom),
        p_value=float(result.p_value),
        groups=labels,
        n=n,
        events=n_events,
    )
