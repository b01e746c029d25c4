"""Cox proportional-hazards models (lifelines ``CoxPHFitter``; Efron ties, as R's ``coxph``).

Numeric (and boolean) covariates enter as they are. Text/categorical covariates are
dummy-coded against a reference level (the first level in sorted order, as R's
``factor`` does, unless given), with terms named ``"<column>=<level>"``.

Convergence is driven tighter than lifelines' defaults (whose Newton step tolerance of
1e-7 leaves coefficients ~1e-6 away from R's); with ``_FIT_OPTIONS`` the estimates agree
with R's ``coxph`` to ~1e-9.

Speed on large cohorts (the same estimates, computed faster):

* Survival times in days give heavy ties (a few thousand distinct times however many
  patients), and lifelines' own choice between its two Efron implementations picks the
  per-row one for large n; ``fit_cox`` asks for the per-distinct-time one ("batch") when
  distinct times are fewer than half the rows (3x faster at 100,000 patients).
* The proportional-hazards test of ``fit_cox(..., ph_test=True)`` is R's ``cox.zph``
  (survival >= 3.0: per term and GLOBAL, ``cox_zph``), computed on the collapsed rows from the
  per-death-time score and information of the Efron likelihood (R's C routine ``zph1`` sums
  the same one death at a time). lifelines' ``proportional_hazard_test`` (the pre-3.0
  Grambsch-Therneau approximation from scaled Schoenfeld residuals, per term, no global test)
  is kept as ``proportional_hazards_test``, with the residuals computed here with numpy:
  lifelines builds them row by row with ``np.append``, quadratic in n.
* Every fit also reports R ``summary(coxph)``'s likelihood-ratio and score tests of the model
  (``CoxResult.lr_test`` / ``score_test``), and ``cox_drop1`` is R's ``drop1(fit, test =
  "Chisq")``: one likelihood-ratio test per covariate (all the levels of a factor at once).
* Converged means |score| < ``SCORE_TOLERANCE`` (1e-8) in every coefficient, per unit of the
  covariate: ``_efron_fit`` iterates until it is, taking its last steps with the score summed
  in extended precision (at a million patients float64 sums leave ~1e-7 of round-off in it);
  ``CoxResult.score_max`` reports it at the reported coefficients for either fitter (lifelines,
  stopped by its own rules, measured 1e-10 to 1e-12 on lung and 20,000-30,000 tied patients).
* From ``NUMPY_MIN_ROWS`` complete cases on, the model is fitted by ``_efron_fit`` instead of
  lifelines: Newton-Raphson on Efron's partial likelihood in numpy, over the distinct
  (time, event, covariates) rows with their counts. Why hand-written: profiled at 1,000,000
  patients, the 11 lifelines fits of the nightly analytics took ~26 s of its ~33 s (per
  fit ~1.4 s in lifelines' Python loop over distinct times, ~0.6 s predicting partial
  hazards for a baseline hazard we never use, the rest pandas copies and sorts), and
  statsmodels' ``PHReg`` (0.15) was slower still (9 s to set up, 2 s to fit one
  univariable model). Collapsing identical rows is exact here because the counts enter
  Efron's formula as numbers of patients (the risk and tie sums count each patient, each
  of the m tied deaths gets its own l/m term), not as lifelines' case weights. The fit
  computes the same statistics (coefficients, the inverse-information variance, Wald
  tests, the Efron log partial likelihood, R's cox.zph, the
  likelihood-ratio and score tests) and is verified (tests/analytics/test_cox_numpy_efron.py) against
  lifelines iterated to its maximum (1e-9 relative) and R's coxph on lung (as lifelines).
  It iterates until the score is below 1e-8, where lifelines' relative
  log-likelihood stop (1e-14) ends ~1e-8 short at 10^5-10^6 patients: the two differ by
  ~1e-7 relative in the coefficients (< 1e-5 standard errors). Whenever a fit
  is not clean — lifelines would warn (low variance) or the Newton-Raphson does not
  converge tidily (monotone likelihood, singular information, non-finite values) — it is
  redone by lifelines, so notes and ``converged`` come from lifelines as before.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError
from lifelines.statistics import TimeTransformers
from lifelines.utils import inv_normal_cdf
from scipy import linalg, stats

from .distinct import distinct_rows

_FIT_OPTIONS = {"precision": 1e-12, "r_precision": 1e-14, "max_steps": 500}

# complete cases from which fit_cox uses the numpy Efron fit (below: lifelines, ~1 s or less)
NUMPY_MIN_ROWS = 20_000

TERM_COLUMNS = ["term", "coef", "se", "hr", "hr_lower", "hr_upper", "z", "p_value"]


@dataclass
class CoxResult:
    """A fitted Cox model.

    ``terms``: one row per model term — term, coef, se, hr, hr_lower, hr_upper (Wald CI),
    z, p_value (Wald). ``reference_levels``: the reference level of each dummy-coded
    covariate. ``ph_test``: R's ``cox.zph`` (``cox_zph``: one row per covariate, all the
    dummies of a categorical one together, then 'GLOBAL'; term, test_statistic, df,
    p_value, time_transform) or None. ``lr_test`` / ``score_test``: the likelihood-ratio
    and score (log-rank) tests of the whole model against no covariates, as R's
    ``summary(coxph)``; ``null_log_likelihood`` l(0); ``score_max`` the largest
    |d log L / d beta| at the reported coefficients (below ``SCORE_TOLERANCE`` when
    converged). ``assign``: covariate -> its terms.
    """

    covariates: tuple[str, ...]
    terms: pd.DataFrame
    n_used: int
    n_dropped: int
    events: int
    converged: bool
    ph_test: pd.DataFrame | None = None
    log_likelihood: float = float("nan")
    messages: tuple[str, ...] = ()
    reference_levels: dict[str, str] = field(default_factory=dict)  # categorical covariate -> its reference
    fitter: CoxPHFitter | None = field(default=None, repr=False)  # None when fitted by numpy (method)
    method: str = "lifelines"  # 'lifelines' or 'numpy' (``_efron_fit``)
    lr_test: ChiSquareTest | None = None
    score_test: ChiSquareTest | None = None
    null_log_likelihood: float = float("nan")
    score_max: float = float("nan")
    assign: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def hazard_ratio(self, term: str) -> float:
        return float(self.terms.set_index("term").loc[term, "hr"])


def _design_matrix(
    frame: pd.DataFrame, covariates: Sequence[str], reference_levels: Mapping[str, object]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The numeric design matrix and the reference level used for each categorical covariate."""
    columns = {}
    references: dict[str, str] = {}
    for name in covariates:
        values = frame[name]
        if pd.api.types.is_bool_dtype(values):
            columns[name] = values.astype(float)
        elif pd.api.types.is_numeric_dtype(values):
            columns[name] = values.astype(float)
        else:
            # each row's text, str(value), through its distinct value (one str() per value)
            categorical = isinstance(values.dtype, pd.CategoricalDtype)
            codes, uniques = pd.factorize(values)
            if not categorical and not all(isinstance(v, str) for v in uniques):  # mixed objects
                codes, uniques = pd.factorize(values.astype(str))
            labels = np.array([str(v) for v in uniques] + [None], dtype=object)  # last: code -1 (missing)
            if categorical:  # the categories that occur, in their order
                order = {lvl: i for i, lvl in enumerate(values.cat.categories)}
                levels = sorted(uniques, key=order.__getitem__)
            else:
                levels = sorted(set(labels[:-1]))
            reference = reference_levels.get(name, levels[0] if levels else None)
            if reference is not None:
                references[name] = str(reference)
            for level in levels:
                if str(level) != str(reference):
                    columns[f"{name}={level}"] = (labels == str(level))[codes].astype(float)
    return pd.DataFrame(columns, index=frame.index), references


def fit_cox(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    covariates: Sequence[str],
    *,
    reference_levels: Mapping[str, object] | None = None,
    ph_test: bool = False,
    ph_time_transform: str = "km",
    alpha: float = 0.05,
    method: str = "auto",
) -> CoxResult:
    """Fit one Cox model on the rows complete in duration, event and every covariate.

    ``n_used``/``n_dropped`` report the complete-case selection (R's ``na.action =
    na.omit``). A model that cannot be fitted (no events, a constant covariate,
    divergence) returns NaN terms with ``converged = False`` and the reason in
    ``messages`` rather than raising, so a batch of univariable models keeps going.

    ``ph_test``: R's ``cox.zph(fit, transform = ph_time_transform, terms = TRUE)`` with
    its GLOBAL test (``cox_zph``; survival >= 3.0's score test, which lifelines'
    ``proportional_hazard_test`` — still available as ``proportional_hazards_test`` — does
    not compute). Transforms: 'km' (R's default), 'rank', 'identity', 'log'.

    ``method``: 'auto' (numpy from ``NUMPY_MIN_ROWS`` complete cases, else lifelines),
    'numpy' or 'lifelines'. Either gives the same estimates; a numpy fit that is not clean
    is redone by lifelines (``CoxResult.method`` tells which one answered).
    """
    if method not in ("auto", "numpy", "lifelines"):
        raise ValueError(f"method must be 'auto', 'numpy' or 'lifelines', not {method!r}")
    if ph_test and ph_time_transform not in ZPH_TRANSFORMS:
        raise ValueError(f"ph_time_transform must be one of {ZPH_TRANSFORMS}, not {ph_time_transform!r}")
    covariates = tuple(covariates)
    reference_levels = dict(reference_levels or {})
    needed = [duration_col, event_col, *covariates]
    complete = df[needed]
    incomplete = complete.isna().any(axis=1).to_numpy()
    complete = complete[~incomplete] if incomplete.any() else complete  # dropna(), without a copy when complete
    n_dropped = len(df) - len(complete)
    design, references = _design_matrix(complete, covariates, reference_levels)
    assign = _assign(covariates, design.columns)
    model_frame = pd.concat(
        [complete[duration_col].astype(float).rename("_T"), complete[event_col].astype(float).rename("_E"), design],
        axis=1,
    )
    events = int(model_frame["_E"].sum())
    messages: list[str] = []

    def failed(reason: str) -> CoxResult:
        terms = pd.DataFrame({"term": list(design.columns) or list(covariates)})
        for column in TERM_COLUMNS[1:]:
            terms[column] = np.nan
        return CoxResult(covariates, terms, len(complete), n_dropped, events, False, None, float("nan"),
                         (*messages, reason), references, assign=assign)

    if events == 0:
        return failed("no events among complete cases")
    if design.shape[1] == 0:
        return failed("no covariate varies among complete cases")
    constant = [c for c in design.columns if design[c].min() == design[c].max()]  # no NaN here
    if constant:
        return failed(f"constant covariate(s) among complete cases: {', '.join(constant)}")

    use_numpy = method == "numpy" or (method == "auto" and len(model_frame) >= NUMPY_MIN_ROWS)
    if use_numpy:
        fast = _numpy_fit(model_frame, design.columns, ph_test, ph_time_transform, assign)
        if fast is not None:
            terms = _terms_table(fast.params, fast.variance, alpha)
            tests = fast.tests
            return CoxResult(covariates, terms, len(complete), n_dropped, events, True, fast.ph_test,
                             fast.log_likelihood, tuple(messages), references, None, "numpy", tests.lr,
                             tests.score, tests.null_log_likelihood, tests.score_max, assign)

    fitter = CoxPHFitter(alpha=alpha)
    # heavy ties: lifelines' per-distinct-time Efron computation (same estimates); else its own choice
    batch_mode = True if model_frame["_T"].nunique() <= len(model_frame) / 2 else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitter.fit(model_frame, duration_col="_T", event_col="_E", fit_options=_FIT_OPTIONS,
                       batch_mode=batch_mode)
        except (ConvergenceError, np.linalg.LinAlgError, ValueError) as error:
            messages.extend(str(w.message).strip().splitlines()[0] for w in caught)
            return failed(f"fit failed: {str(error).strip().splitlines()[0]}")
    messages.extend(str(w.message).strip().splitlines()[0] for w in caught)

    summary = fitter.summary
    level = f"{int(round((1 - alpha) * 100))}%"
    terms = pd.DataFrame(
        {
            "term": summary.index.astype(str),
            "coef": summary["coef"].to_numpy(float),
            "se": summary["se(coef)"].to_numpy(float),
            "hr": summary["exp(coef)"].to_numpy(float),
            "hr_lower": summary[f"exp(coef) lower {level}"].to_numpy(float),
            "hr_upper": summary[f"exp(coef) upper {level}"].to_numpy(float),
            "z": summary["z"].to_numpy(float),
            "p_value": summary["p"].to_numpy(float),
        }
    )
    converged = not any("converge" in m.lower() or "separation" in m.lower() for m in messages)

    columns = list(design.columns)
    time, event, x, count = _collapse(model_frame["_T"].to_numpy(float), model_frame["_E"].to_numpy(bool),
                                      model_frame[columns].to_numpy(float))
    beta = fitter.params_[columns].to_numpy(float)
    ll = float(fitter.log_likelihood_)
    likelihood = _centred_likelihood(time, event, x, count)
    tests = _model_tests(time, event, x, count, beta, ll, likelihood=likelihood) if converged else None
    ph = None
    if ph_test:
        ph = cox_zph(time, event, x, count, beta, _assign_columns(assign, columns), ph_time_transform,
                     likelihood=likelihood)

    return CoxResult(
        covariates=covariates,
        terms=terms,
        n_used=len(complete),
        n_dropped=n_dropped,
        events=events,
        converged=converged,
        ph_test=ph,
        log_likelihood=float(fitter.log_likelihood_),
        messages=tuple(messages),
        reference_levels=references,
        fitter=fitter,
        lr_test=None if tests is None else tests.lr,
        score_test=None if tests is None else tests.score,
        null_log_likelihood=float("nan") if tests is None else tests.null_log_likelihood,
        score_max=float("nan") if tests is None else tests.score_max,
        assign=assign,
    )


def _assign(covariates: Sequence[str], columns: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """covariate -> its columns of the design matrix (itself, or its '<covariate>=<level>' dummies)."""
    assign: dict[str, tuple[str, ...]] = {c: () for c in covariates}
    for column in columns:
        owner = column if column in assign else next(
            c for c in sorted(covariates, key=len, reverse=True) if column.startswith(f"{c}="))
        assign[owner] = (*assign[owner], column)
    return {c: terms for c, terms in assign.items() if terms}


def _assign_columns(assign: Mapping[str, Sequence[str]], columns: Sequence[str]) -> dict[str, list[int]]:
    position = {c: i for i, c in enumerate(columns)}
    return {covariate: [position[t] for t in terms] for covariate, terms in assign.items()}


def _terms_table(params: pd.Series, variance: np.ndarray, alpha: float) -> pd.DataFrame:
    """The term rows of a fit, computed as lifelines' ``CoxPHFitter.summary`` computes them
    (Wald z and chi-square p-value, CI of the hazard ratio hr * exp(-/+ z se))."""
    coef = params.to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore", under="ignore"):
        se = np.sqrt(np.diag(variance))
        hr = np.exp(coef)
        z_alpha = inv_normal_cdf(1 - alpha / 2)
        z = coef / se
        return pd.DataFrame({
            "term": params.index.astype(str), "coef": coef, "se": se, "hr": hr,
            "hr_lower": hr * np.exp(-z_alpha * se), "hr_upper": hr * np.exp(z_alpha * se),
            "z": z, "p_value": stats.chi2.sf(z**2, 1),
        })


@dataclass
class _NumpyFit:
    params: pd.Series
    variance: np.ndarray
    log_likelihood: float
    ph_test: pd.DataFrame | None
    tests: _ModelTests


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes of ``values`` in the order of their distinct values, and how many there are
    (0/1 columns, the dummies and the event, as they are)."""
    if values.dtype == bool:
        return values.astype(np.int64), 2
    if ((values == 0) | (values == 1)).all():
        return values.astype(np.int64), 2
    codes, levels = pd.factorize(values, sort=True)
    return codes.astype(np.int64, copy=False), len(levels)


def _collapse(time: np.ndarray, event: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """The distinct (time, event, covariates) rows, sorted by time then event, and how many
    rows each stands for: (time, event, x, count)."""
    row, count = distinct_rows([_codes(column) for column in (time, event, *x.T)])
    return time[row], event[row], x[row], count.astype(float)


class _EfronLikelihood:
    """Efron's log partial likelihood, its gradient and Hessian, on rows sorted by time that
    stand for ``count`` patients each.

    At a distinct time t with m deaths: S0, S1, S2 are the sums of phi, phi x, phi x x' over
    everyone with time >= t (phi = exp(x beta)), D0, D1, D2 the same over the m deaths, and
    with a_l = l / m (l = 0 .. m-1) and den_l = S0 - a_l D0 the time contributes
    sum(x beta over deaths) - sum_l log(den_l) to the log-likelihood,
    sum(x) - sum_l (S1 - a_l D1) / den_l to the gradient and
    -sum_l [(S2 - a_l D2) / den_l - (S1 - a_l D1)(S1 - a_l D1)' / den_l^2] to the Hessian;
    the sums over l are taken as the scalars sum 1/den, a/den, 1/den^2, a/den^2, a^2/den^2
    (one entry per death) times the time's S and D terms.
    """

    def __init__(self, time: np.ndarray, event: np.ndarray, x: np.ndarray, count: np.ndarray):
        n, p = x.shape
        self.p = p
        self.x = x
        self.count = count
        upper = np.triu_indices(p)
        self.upper = upper
        # per row: 1, x, the upper triangle of x x' (times phi, summed by segment, they give S and D)
        self.moments = np.column_stack([np.ones(n), x, x[:, upper[0]] * x[:, upper[1]]])
        # rows are sorted by time then event: each time is a segment of censored rows followed
        # by a segment of deaths; one sum per segment gives the time's total and its deaths
        new_time = np.r_[True, time[1:] != time[:-1]]
        new_status = new_time | np.r_[False, event[1:] != event[:-1]]
        segments = np.flatnonzero(new_status)
        self.segments = segments
        self.segment_of_time = np.flatnonzero(new_time[segments])  # first segment of each time
        self.death_segments = np.flatnonzero(event[segments])  # (one per time with deaths)
        time_index = np.cumsum(new_time) - 1
        n_times = int(time_index[-1]) + 1
        self.with_deaths = np.zeros(n_times, dtype=bool)
        self.with_deaths[time_index[segments[self.death_segments]]] = True
        deaths = np.add.reduceat(np.where(event, count, 0.0), segments)[self.death_segments]
        m = np.rint(deaths).astype(np.int64)
        self.group = np.repeat(np.arange(m.size), m)  # one entry per death: its time
        self.first = np.cumsum(m) - m  # the deaths of a time are contiguous from here
        self.a = (np.arange(self.group.size) - self.first[self.group]) / m[self.group]
        self.a2 = self.a * self.a
        death_count = np.where(event, count, 0.0)
        self.death_count = death_count
        self.n_deaths = float(death_count.sum())
        self.death_x_sum = death_count @ x

    def _matrices(self, sums: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sum phi, sum phi x, sum phi x x') from the segment sums of ``moments``."""
        p = self.p
        second = np.empty((sums.shape[0], p, p))
        second[:, self.upper[0], self.upper[1]] = sums[:, p + 1:]
        second[:, self.upper[1], self.upper[0]] = sums[:, p + 1:]
        return sums[:, 0], sums[:, 1:p + 1], second

    def __call__(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        eta = self.x @ beta
        phi = self.count * np.exp(eta)
        by_segment = np.add.reduceat(phi[:, None] * self.moments, self.segments, axis=0)
        by_time = np.add.reduceat(by_segment, self.segment_of_time, axis=0)
        s0, s1, s2 = self._matrices(np.cumsum(by_time[::-1], axis=0)[::-1][self.with_deaths])  # time >= t
        d0, d1, d2 = self._matrices(by_segment[self.death_segments])
        g, a, first = self.group, self.a, self.first
        den = s0[g] - a * d0[g]
        inv = 1.0 / den
        inv2 = inv * inv
        sum_inv, sum_a_inv, sum_inv2, sum_a_inv2, sum_aa_inv2 = (
            np.add.reduceat(terms, first) for terms in (inv, a * inv, inv2, a * inv2, self.a2 * inv2))
        log_likelihood = float(self.death_count @ eta - np.log(den).sum())
        gradient = self.death_x_sum - (s1 * sum_inv[:, None] - d1 * sum_a_inv[:, None]).sum(0)
        s1s1 = s1[:, :, None] * s1[:, None, :]
        s1d1 = s1[:, :, None] * d1[:, None, :]
        d1d1 = d1[:, :, None] * d1[:, None, :]
        hessian = -(s2 * sum_inv[:, None, None] - d2 * sum_a_inv[:, None, None]
                    - s1s1 * sum_inv2[:, None, None]
                    + (s1d1 + s1d1.transpose(0, 2, 1)) * sum_a_inv2[:, None, None]
                    - d1d1 * sum_aa_inv2[:, None, None]).sum(0)
        return log_likelihood, gradient, hessian

    def per_time(self, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each death time's contribution to the score and to the information at ``beta``:
        (score (times x p), information (times x p x p)); their sums over the times are the
        gradient and minus the Hessian of ``__call__``. With ``a_l``, ``den_l`` as there and
        the Efron means ``mean_l = (S1 - a_l D1) / den_l``, a time contributes
        ``sum(x over deaths) - sum_l mean_l`` and ``sum_l [(S2 - a_l D2) / den_l - mean_l mean_l']``
        (R survival's ``zph1`` computes the same sums, one death at a time)."""
        eta = self.x @ beta
        phi = self.count * np.exp(eta)
        by_segment = np.add.reduceat(phi[:, None] * self.moments, self.segments, axis=0)
        by_time = np.add.reduceat(by_segment, self.segment_of_time, axis=0)
        s0, s1, s2 = self._matrices(np.cumsum(by_time[::-1], axis=0)[::-1][self.with_deaths])
        d0, d1, d2 = self._matrices(by_segment[self.death_segments])
        g, a, first = self.group, self.a, self.first
        inv = 1.0 / (s0[g] - a * d0[g])
        inv2 = inv * inv
        sum_inv, sum_a_inv, sum_inv2, sum_a_inv2, sum_aa_inv2 = (
            np.add.reduceat(terms, first) for terms in (inv, a * inv, inv2, a * inv2, self.a2 * inv2))
        death_x = np.add.reduceat(self.death_count[:, None] * self.x, self.segments, axis=0)[self.death_segments]
        score = death_x - (s1 * sum_inv[:, None] - d1 * sum_a_inv[:, None])
        s1d1 = s1[:, :, None] * d1[:, None, :]
        information = (s2 * sum_inv[:, None, None] - d2 * sum_a_inv[:, None, None]
                       - s1[:, :, None] * s1[:, None, :] * sum_inv2[:, None, None]
                       + (s1d1 + s1d1.transpose(0, 2, 1)) * sum_a_inv2[:, None, None]
                       - d1[:, :, None] * d1[:, None, :] * sum_aa_inv2[:, None, None])
        return score, information

    def precise_score(self, beta: np.ndarray) -> np.ndarray:
        """The gradient of ``__call__`` summed in extended precision (``np.longdouble``).

        At a million patients the float64 risk-set sums leave ~1e-7 of round-off in the
        score (measured against this), more than the 1e-8 the fit is to converge to; the
        Newton steps near the maximum and the convergence check use this one."""
        wide = np.longdouble
        x = self.x.astype(wide)
        phi = self.count.astype(wide) * np.exp(x @ np.asarray(beta, wide))
        moments = np.column_stack([phi, phi[:, None] * x])
        by_segment = np.add.reduceat(moments, self.segments, axis=0)
        by_time = np.add.reduceat(by_segment, self.segment_of_time, axis=0)
        risk = np.cumsum(by_time[::-1], axis=0)[::-1][self.with_deaths]
        deaths = by_segment[self.death_segments]
        g, a, first = self.group, self.a.astype(wide), self.first
        inv = 1 / (risk[g, 0] - a * deaths[g, 0])
        sum_inv, sum_a_inv = np.add.reduceat(inv, first), np.add.reduceat(a * inv, first)
        death_x_sum = self.death_count.astype(wide) @ x
        return death_x_sum - (risk[:, 1:] * sum_inv[:, None] - deaths[:, 1:] * sum_a_inv[:, None]).sum(0)


_NEWTON_MAX_STEPS = 50
# converged: every component of the score (d log L / d beta, per unit of the covariate as given)
# is below this at the reported coefficients (issue 13: |score| < 1e-8)
SCORE_TOLERANCE = 1e-8
# from this score on (per unit, float64) the steps use ``precise_score``: the quadratic region
_PRECISE_FROM = 1e-4
# a monotone likelihood (e.g. no deaths in a level) runs a coefficient off to infinity until the
# level's terms vanish below the float resolution of the sums, where the iterations stall and
# look converged: such fits are left to lifelines (which warns), recognised by a coefficient
# beyond 20 per standard deviation or a direction with (almost) no information per death
_NEWTON_MAX_BETA = 20.0
_MIN_INFORMATION_PER_DEATH = 1e-6


def _efron_fit(time: np.ndarray, event: np.ndarray, x: np.ndarray, count: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, float, float, float] | None:
    """Newton-Raphson (with step halving) for the Efron Cox model on collapsed rows sorted by
    time: (coefficients, their variance matrix, log partial likelihood, the score test
    statistic U(0)' I(0)^-1 U(0), the largest |score| at the estimate), or None when the
    fit is not clean (no convergence, singular information, a coefficient running off).

    As lifelines, the covariates are standardised for the iterations and the estimates
    scaled back; the variance is the inverse of the observed information at the estimate.
    Converged means every component of the score, per unit of the covariate as given
    (``gradient * std`` of the standardised one), is below ``SCORE_TOLERANCE``; a fit that
    does not get there in ``_NEWTON_MAX_STEPS`` is not clean.
    """
    n = count.sum()
    mean = count @ x / n
    std = np.sqrt(count @ (x - mean) ** 2 / (n - 1))
    likelihood = _EfronLikelihood(time, event, (x - mean) / std, count)
    beta = np.zeros(x.shape[1])
    with np.errstate(all="ignore"):
        ll, gradient, hessian = likelihood(beta)
        try:  # the score test at beta = 0 (the same in standardised covariates)
            score_test = float(gradient @ linalg.solve(-hessian, gradient, assume_a="sym"))
        except (linalg.LinAlgError, ValueError):
            return None
        for _ in range(_NEWTON_MAX_STEPS):
            if not (np.isfinite(ll) and np.isfinite(gradient).all() and np.isfinite(hessian).all()):
                return None
            near = bool(np.abs(gradient * std).max() < _PRECISE_FROM)
            if near:  # the score per unit of each covariate (d/d beta = std * d/d standardised beta)
                gradient = likelihood.precise_score(beta)
                if np.abs(gradient * std).max() < SCORE_TOLERANCE:
                    break
                gradient = gradient.astype(float)
            try:
                step = linalg.cho_solve(linalg.cho_factor(-hessian), gradient)
            except (linalg.LinAlgError, ValueError):
                return None
            if not np.isfinite(step).all():
                return None
            if near:  # a full Newton step (the log-likelihood no longer resolves its change)
                beta = beta + step
                ll, gradient, hessian = likelihood(beta)
                continue
            for _ in range(30):  # halve the step while the likelihood falls
                candidate = beta + step
                new = likelihood(candidate)
                if np.isfinite(new[0]) and new[0] >= ll - 1e-12 * abs(ll):
                    break
                step = step / 2
            else:
                return None
            beta = candidate
            ll, gradient, hessian = new
            if np.abs(beta).max() > _NEWTON_MAX_BETA:
                return None
        else:
            return None
        if np.abs(beta).max() > _NEWTON_MAX_BETA:
            return None
        information = np.linalg.eigvalsh(-hessian)  # standardised covariates
        if not information.min() > _MIN_INFORMATION_PER_DEATH * likelihood.n_deaths:
            return None
        variance = -np.linalg.inv(hessian) / np.outer(std, std)
    if not np.isfinite(variance).all() or (np.diag(variance) <= 0).any():
        return None
    return beta / std, variance, ll, score_test, float(np.abs(gradient * std).max())


def _numpy_fit(model_frame: pd.DataFrame, terms: Sequence[str], ph_test: bool, time_transform: str,
               assign: Mapping[str, Sequence[str]]) -> _NumpyFit | None:
    """``_efron_fit`` of the model frame (``_T``, ``_E`` and the term columns), with the PH
    test when asked; None where lifelines would warn or raise, or the fit is not clean."""
    terms = list(terms)
    time = model_frame["_T"].to_numpy(float)
    observed = model_frame["_E"].to_numpy(float)
    x = model_frame[terms].to_numpy(float)
    if not (np.isfinite(time).all() and np.isfinite(observed).all() and np.isfinite(x).all()):
        return None  # lifelines raises on NaN/inf
    if (model_frame[terms].var(0) < 1e-4).any():
        return None  # lifelines warns of low variance (check_low_var)
    time, event, x, count = _collapse(time, observed.astype(bool), x)
    fit = _efron_fit(time, event, x, count)
    if fit is None:
        return None
    params, variance, ll, score_test, score_max = fit
    ph = cox_zph(time, event, x, count, params, _assign_columns(assign, terms), time_transform) if ph_test else None
    null = _null_log_likelihood(time, event, count)
    p = len(terms)
    tests = _ModelTests(null, ChiSquareTest.of(2 * (ll - null), p), ChiSquareTest.of(score_test, p), score_max)
    return _NumpyFit(pd.Series(params, index=terms), variance, ll, ph, tests)


def _schoenfeld_residuals(x: np.ndarray, time: np.ndarray, event: np.ndarray, beta: np.ndarray,
                          count: np.ndarray | None = None) -> np.ndarray:
    """Schoenfeld residuals (Efron ties) of the event rows, rows sorted by time.

    For a death at t: x_i minus the Efron-weighted mean of x over the risk set at t,
    (1/m) sum_{l<m} (S1 - l/m D1) / (S0 - l/m D0), where S0, S1 are the sums of
    exp(x beta) and x exp(x beta) over everyone with time >= t, D0, D1 the same over
    the m deaths at t. Vectorised form of lifelines' ``_compute_schoenfeld_within_strata``
    (the same sums, in the same order for the risk set). ``count``: how many patients each
    row stands for (collapsed rows; the residual is the same for each of them).
    """
    phi = np.exp(x @ beta)
    if count is not None:
        phi = phi * count
    phi_x = phi[:, None] * x
    risk_phi = np.cumsum(phi[::-1])[::-1]  # sums over rows i.. (time >= t_i when sorted)
    risk_phi_x = np.cumsum(phi_x[::-1], axis=0)[::-1]
    new_time = np.r_[True, time[1:] != time[:-1]]
    starts = np.flatnonzero(new_time)  # first row of each distinct time
    time_group = np.cumsum(new_time) - 1  # distinct-time index of every row
    patients = event.astype(np.int64) if count is None else np.where(event, count, 0).astype(np.int64)
    deaths = np.add.reduceat(patients, starts)
    tie_phi = np.add.reduceat(np.where(event, phi, 0.0), starts)
    tie_phi_x = np.add.reduceat(np.where(event[:, None], phi_x, 0.0), starts, axis=0)
    with_deaths = deaths > 0
    m_of = deaths[with_deaths]
    s0, s1 = risk_phi[starts[with_deaths]], risk_phi_x[starts[with_deaths]]
    d0, d1 = tie_phi[with_deaths], tie_phi_x[with_deaths]
    # one term per death, l = 0 .. m - 1 within its time
    group = np.repeat(np.arange(m_of.size), m_of)
    first = np.cumsum(m_of) - m_of
    l = (np.arange(group.size) - first[group]).astype(float)[:, None]
    m = m_of[group].astype(float)[:, None]
    numer = s1[group] - l * d1[group] / m
    denom = s0[group][:, None] - l * d0[group][:, None] / m
    mean_of = np.full((starts.size, x.shape[1]), np.nan)
    mean_of[with_deaths] = np.add.reduceat(numer / (denom * m), first, axis=0)
    return x[event] - mean_of[time_group[event]]


def _ph_test_table(terms: Sequence[str], x: np.ndarray, time: np.ndarray, event: np.ndarray, beta: np.ndarray,
                   variance: np.ndarray, transformed: np.ndarray, time_transform: str,
                   count: np.ndarray | None = None) -> pd.DataFrame:
    """The per-term scaled-Schoenfeld test of lifelines' ``proportional_hazard_test`` from rows
    sorted by time (then event): ``transformed`` is the time transform of every row,
    ``count`` how many patients each row stands for (None: one)."""
    residuals = _schoenfeld_residuals(x, time, event, beta, count)
    times = transformed[event]
    if count is None:
        n_deaths = event.sum()
        scaled = n_deaths * residuals @ variance
        demeaned = times - times.mean()
        weighted = demeaned
        sum_squares = (demeaned**2).sum()
    else:
        deaths = count[event]
        n_deaths = deaths.sum()
        scaled = n_deaths * residuals @ variance
        demeaned = times - (deaths * times).sum() / n_deaths
        weighted = deaths * demeaned
        sum_squares = (deaths * demeaned**2).sum()
    se_squared = np.diag(variance)
    statistic = (weighted[:, None] * scaled).sum(0) ** 2 / (n_deaths * se_squared * sum_squares)
    return pd.DataFrame({"term": [str(t) for t in terms], "test_statistic": statistic.astype(float),
                         "p_value": stats.chi2.sf(statistic, 1).astype(float), "time_transform": time_transform})


def proportional_hazards_test(
    fitter: CoxPHFitter, model_frame: pd.DataFrame, duration_col: str, event_col: str, *,
    time_transform: str = "km",
) -> pd.DataFrame:
    """lifelines' ``proportional_hazard_test`` (Grambsch-Therneau score test on the scaled
    Schoenfeld residuals, one 1-df chi-square per term) for a fitter fitted on
    ``model_frame`` without weights or strata: term, test_statistic, p_value, time_transform."""
    ordered = model_frame.sort_values(by=[duration_col, event_col])  # lifelines' order
    terms = list(fitter.params_.index)
    transform = TimeTransformers().get(time_transform)
    transformed = np.asarray(transform(fitter.durations, fitter.event_observed, fitter.weights), float)
    return _ph_test_table(terms, ordered[terms].to_numpy(float), ordered[duration_col].to_numpy(float),
                          ordered[event_col].to_numpy().astype(bool), fitter.params_.to_numpy(float),
                          fitter.variance_matrix_.to_numpy(float), transformed, time_transform)


def cox_univariable(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    covariates: Sequence[str],
    *,
    reference_levels: Mapping[str, object] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """One Cox model per covariate (each on its own complete cases).

    Returns a long table: covariate, term, coef, se, hr, hr_lower, hr_upper, z, p_value,
    n_used, events, converged.
    """
    frames = []
    for covariate in covariates:
        result = fit_cox(df, duration_col, event_col, [covariate], reference_levels=reference_levels, alpha=alpha)
        terms = result.terms.copy()
        terms.insert(0, "covariate", covariate)
        terms["n_used"] = result.n_used
        terms["events"] = result.events
        terms["converged"] = result.converged
        frames.append(terms)
    if not frames:
        return pd.DataFrame(columns=["covariate", *TERM_COLUMNS, "n_used", "events", "converged"])
    return pd.concat(frames, ignore_index=True)


def cox_multivariable(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    covariates: Sequence[str],
    *,
    reference_levels: Mapping[str, object] | None = None,
    ph_time_transform: str = "km",
    alpha: float = 0.05,
) -> CoxResult:
    """A multivariable Cox model on complete cases, with its proportional-hazards check."""
    return fit_cox(
        df,
        duration_col,
        event_col,
        covariates,
        reference_levels=reference_levels,
        ph_test=True,
        ph_time_transform=ph_time_transform,
        alpha=alpha,
    )


# ---------------------------------------------------------------------------- R's tests
ZPH_TRANSFORMS: tuple[str, ...] = ("km", "rank", "identity", "log")


@dataclass(frozen=True)
class ChiSquareTest:
    """A chi-square test: statistic, degrees of freedom, p-value (upper tail)."""

    statistic: float
    df: int
    p_value: float

    @classmethod
    def of(cls, statistic: float, df: int) -> ChiSquareTest:
        return cls(float(statistic), int(df), float(stats.chi2.sf(statistic, df)))


_NAN_TEST = ChiSquareTest(float("nan"), 0, float("nan"))


def _zph_time(time: np.ndarray, event: np.ndarray, count: np.ndarray, transform: str) -> np.ndarray:
    """The transformed time of every row, as R's ``cox.zph`` computes it (rows sorted by time;
    ``count`` patients per row): 'km' 1 - S(t-) of the Kaplan-Meier of all rows (left
    continuous), 'rank' the mid-rank of t among all patients (R ``rank``), 'identity' t,
    'log' log t."""
    if transform == "identity":
        return time.astype(float)
    if transform == "log":
        return np.log(time)
    new_time = np.r_[True, time[1:] != time[:-1]]
    starts = np.flatnonzero(new_time)
    of_row = np.cumsum(new_time) - 1
    at_time = np.add.reduceat(count, starts)
    if transform == "rank":
        before = np.cumsum(at_time) - at_time
        return (before + (at_time + 1) / 2)[of_row]
    if transform == "km":
        deaths = np.add.reduceat(np.where(event, count, 0.0), starts)
        at_risk = np.cumsum(at_time[::-1])[::-1]
        survival = np.cumprod(1 - deaths / at_risk)
        before = np.r_[1.0, survival[:-1]]  # S(t-)
        return (1 - before)[of_row]
    raise ValueError(f"time transform must be one of {ZPH_TRANSFORMS}, not {transform!r}")


def cox_zph(time: np.ndarray, event: np.ndarray, x: np.ndarray, count: np.ndarray, beta: np.ndarray,
            assign: Mapping[str, Sequence[int]], transform: str = "km", *,
            likelihood: _EfronLikelihood | None = None) -> pd.DataFrame:
    """R survival's ``cox.zph(fit, transform, terms = TRUE, global = TRUE)`` (survival >= 3.0)
    for an Efron fit with coefficients ``beta`` on rows sorted by time then event, ``count``
    patients each (no strata, no weights): one row per model term (``assign``: term -> its
    columns of ``x``, e.g. the dummies of a factor) and a last row 'GLOBAL'.

    This is R's score test, not the Grambsch-Therneau approximation on scaled Schoenfeld
    residuals of survival < 3.0 (and of lifelines' ``proportional_hazard_test``): the Cox
    model is extended by the terms ``x * g(t)``, with ``g`` the transformed time centred on
    its mean over the deaths, and the score test of their coefficients = 0 is taken at
    (beta, 0) with the full 2p x 2p information of the extended model. With ``U`` the score
    of the time terms and ``I`` that information, a term with columns ``j`` has
    ``chisq = u' I[k, k]^-1 u`` over ``k`` = the p model columns and the term's time
    columns, ``u`` = (0, U[j]), df = len(j); GLOBAL uses every column, df = p.
    Columns: term, test_statistic, df, p_value, time_transform. ``likelihood``: that of
    these rows with the covariates centred (``_centred_likelihood``), when already built."""
    likelihood = likelihood or _centred_likelihood(time, event, x, count)
    score, information = likelihood.per_time(np.asarray(beta, float))
    ttime = _zph_time(time, event, count, transform)
    deaths = np.where(event, count, 0.0)
    g = (ttime - (deaths @ ttime) / deaths.sum())[likelihood.segments[likelihood.death_segments]]
    p = x.shape[1]
    u = np.r_[np.zeros(p), g @ score]
    i12 = (g[:, None, None] * information).sum(0)
    imat = np.block([[information.sum(0), i12], [i12.T, (g[:, None, None] ** 2 * information).sum(0)]])
    rows = []
    for term, columns in [*assign.items(), ("GLOBAL", range(p))]:
        keep = np.r_[np.arange(p), p + np.asarray(list(columns), dtype=np.int64)]
        uk = u[keep]
        statistic = _quadratic_form(uk, imat[np.ix_(keep, keep)])
        test = ChiSquareTest.of(statistic, len(keep) - p)
        rows.append((str(term), test.statistic, test.df, test.p_value, transform))
    return pd.DataFrame(rows, columns=["term", "test_statistic", "df", "p_value", "time_transform"])


def _quadratic_form(u: np.ndarray, information: np.ndarray) -> float:
    """u' I^-1 u, NaN when the information is singular (e.g. a covariate constant among the
    deaths, or a time transform constant over them): the test cannot be computed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", linalg.LinAlgWarning)  # ill-conditioned: as singular
            return float(u @ linalg.solve(information, u, assume_a="sym"))
    except (linalg.LinAlgError, linalg.LinAlgWarning, ValueError):
        return float("nan")


def _centred_likelihood(time: np.ndarray, event: np.ndarray, x: np.ndarray, count: np.ndarray
                        ) -> _EfronLikelihood:
    """The Efron likelihood of the rows with the covariates minus their means over the
    patients: the scores, informations and tests of a Cox model do not change, and the
    risk-set sums cancel far less (R's coxph and zph1 centre the same way)."""
    return _EfronLikelihood(time, event, x - (count @ x) / count.sum(), count)


def _null_log_likelihood(time: np.ndarray, event: np.ndarray, count: np.ndarray) -> float:
    """Efron's log partial likelihood at beta = 0 (rows sorted by time): every phi is 1, so a
    time with m deaths and n at risk contributes -sum_{l<m} log(n - l)."""
    new_time = np.r_[True, time[1:] != time[:-1]]
    starts = np.flatnonzero(new_time)
    deaths = np.rint(np.add.reduceat(np.where(event, count, 0.0), starts)).astype(np.int64)
    at_risk = np.cumsum(np.add.reduceat(count, starts)[::-1])[::-1]
    with_deaths = deaths > 0
    m, n = deaths[with_deaths], at_risk[with_deaths]
    l = np.arange(m.sum()) - np.repeat(np.cumsum(m) - m, m)
    return float(-np.log(np.repeat(n, m) - l).sum())


@dataclass(frozen=True)
class _ModelTests:
    null_log_likelihood: float
    lr: ChiSquareTest
    score: ChiSquareTest
    score_max: float  # max |d log L / d beta| at the reported coefficients


def _model_tests(time: np.ndarray, event: np.ndarray, x: np.ndarray, count: np.ndarray, beta: np.ndarray,
                 log_likelihood: float, *, likelihood: _EfronLikelihood | None = None) -> _ModelTests:
    """The global tests of R's ``summary(coxph)`` on collapsed rows sorted by time: the
    likelihood-ratio test 2 (l(beta) - l(0)) and the score (log-rank) test U(0)' I(0)^-1 U(0),
    both on p df; and the largest score component at ``beta`` (the convergence check)."""
    p = x.shape[1]
    likelihood = likelihood or _centred_likelihood(time, event, x, count)
    null = _null_log_likelihood(time, event, count)
    _, u0, h0 = likelihood(np.zeros(p))
    score = _quadratic_form(u0, -h0)
    u = likelihood.precise_score(np.asarray(beta, float))
    return _ModelTests(null, ChiSquareTest.of(2 * (log_likelihood - null), p), ChiSquareTest.of(score, p),
                       float(np.abs(u).max()))


def cox_drop1(df: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str], *,
              reference_levels: Mapping[str, object] | None = None, full: CoxResult | None = None,
              method: str = "auto") -> pd.DataFrame:
    """R's ``drop1(coxph(...), test = "Chisq")``: for each covariate the likelihood-ratio test of
    the model without it against the full model, both on the full model's complete cases
    (so a multi-level factor gets one global test on levels - 1 df). ``full``: the full
    model's ``fit_cox`` result when already fitted. Columns: covariate, test_statistic, df,
    p_value (NaN where a model did not converge)."""
    covariates = tuple(covariates)
    if full is None:
        full = fit_cox(df, duration_col, event_col, covariates, reference_levels=reference_levels, method=method)
    complete = df[[duration_col, event_col, *covariates]].dropna()
    rows = []
    for covariate in covariates:
        n_terms = len(full.assign.get(covariate, ()))
        rest = [c for c in covariates if c != covariate]
        if not full.converged:
            reduced_ll = float("nan")
        elif rest:
            reduced = fit_cox(complete, duration_col, event_col, rest, reference_levels=reference_levels, method=method)
            reduced_ll = reduced.log_likelihood if reduced.converged else float("nan")
        else:
            reduced_ll = full.null_log_likelihood
        test = ChiSquareTest.of(2 * (full.log_likelihood - reduced_ll), n_terms)
        rows.append((covariate, test.statistic, n_terms, test.p_value))
    return pd.DataFrame(rows, columns=["covariate", "test_statistic", "df", "p_value"])
