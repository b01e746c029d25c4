"""Chart builders (pure: DataFrame -> ``alt.Chart``) and the two ways pages show results.

* ``show(chart, name)``: the chart, plus PNG and SVG downloads rendered server-side by
  vl-convert (only when clicked: the download data is a callable).
* ``table(df, name)``: ``st.dataframe`` plus a CSV download.

Builders take tidy frames prepared by the pages and know nothing of the warehouse. They set
explicit pixel sizes so an exported image looks like the chart on screen.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
import vl_convert as vlc

from prrt.config import dbt_var
from streamlit_app.downloads import csv_bytes

RESPONSE_ORDER = ["CR", "PR", "SD", "PD", "NE", "missing"]
RESPONSE_COLOURS = ["#1a9850", "#91cf60", "#fdd835", "#d73027", "#9e9e9e", "#d9d9d9"]

GROUP_COLOURS = ["#4c78a8", "#9ecae9", "#f58518", "#ffbf79"]

GRADE_ORDER = [0, 1, 2, 3, 4]
GRADE_COLOURS = ["#eeeeee", "#fdd49e", "#fc8d59", "#d7301f", "#7f0000"]
GRADE_SCALE = alt.Scale(domain=GRADE_ORDER, range=GRADE_COLOURS)

WIDTH = 720

# swimmer plot: how an assessment's modality is named (fct_tumour_assessment.is_recist)
RECIST_MODALITY = "CT/MRI (RECIST 1.1)"
PET_MODALITY = "Ga-68 DOTATATE PET (not RECIST)"


def response_scale(present: Sequence[object] | None = None) -> alt.Scale:
    """RECIST colours (green CR ... red PD, greys NE/missing), legend limited to ``present`` values."""
    pairs = list(zip(RESPONSE_ORDER, RESPONSE_COLOURS, strict=True))
    if present is not None:
        keep = {str(v) for v in present}
        pairs = [p for p in pairs if p[0] in keep] or pairs
    return alt.Scale(domain=[p[0] for p in pairs], range=[p[1] for p in pairs])


# --- export and display -------------------------------------------------------------


def _spec(chart: alt.TopLevelMixin) -> str:
    with alt.data_transformers.disable_max_rows():
        return chart.to_json()


def to_png(chart: alt.TopLevelMixin, scale: float = 2.0) -> bytes:
    """The chart as PNG bytes, rendered by vl-convert (no browser)."""
    return vlc.vegalite_to_png(_spec(chart), scale=scale)


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an SVG document, rendered by vl-convert."""
    return vlc.vegalite_to_svg(_spec(chart))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "chart"


def show(chart: alt.TopLevelMixin, name: str, *, stretch: bool = True) -> None:
    """Draw ``chart`` and offer it as PNG and SVG (rendered on click)."""
    slug = _slug(name)
    st.altair_chart(chart, width="stretch" if stretch else "content")
    row = st.container(horizontal=True)
    row.download_button(
        "PNG", data=lambda: to_png(chart), file_name=f"{slug}.png", mime="image/png",
        key=f"download_png_{slug}", on_click="ignore", icon=":material/image:",
    )
    row.download_button(
        "SVG", data=lambda: to_svg(chart), file_name=f"{slug}.svg", mime="image/svg+xml",
        key=f"download_svg_{slug}", on_click="ignore", icon=":material/draw:",
    )


def table(df: pd.DataFrame, name: str, *, csv: Callable[[], pd.DataFrame] | None = None,
          **dataframe_kwargs) -> None:
    """``st.dataframe`` (index hidden, full width) with a CSV download of exactly what is shown, or
    of ``csv()`` when given (the whole of a table shown in part: read only if downloaded)."""
    slug = _slug(name)
    options = {"hide_index": True, "width": "stretch", **dataframe_kwargs}
    st.dataframe(df, **options)
    full = csv or (lambda: df)
    st.download_button(
        "CSV", data=lambda: csv_bytes(full()), file_name=f"{slug}.csv", mime="text/csv",
        key=f"download_csv_{slug}", on_click="ignore", icon=":material/download:",
    )


# --- helpers ------------------------------------------------------------------------


def short_key(keys: pd.Series | Sequence[str], length: int = 8) -> pd.Series:
    """First characters of the patient_key hash: enough to tell lanes apart on a chart."""
    return pd.Series(keys).astype(str).str[:length]


def thin_sorted(df: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """Every k-th row of an already sorted frame (first and last kept), at most ``max_rows``.

    A waterfall is the sorted per-patient values, so thinning keeps its shape.
    """
    if len(df) <= max_rows:
        return df
    positions = np.unique(np.linspace(0, len(df) - 1, max_rows).round().astype(int))
    return df.iloc[positions]


def months(days: pd.Series | float) -> pd.Series | float:
    """Days -> months, as fct_survival (days / dbt var days_per_month)."""
    return days / float(dbt_var("days_per_month"))


# --- generic ------------------------------------------------------------------------


def counts_bar(
    df: pd.DataFrame, category: str, count: str = "n", *, order: Sequence[str] | None = None,
    colour: alt.Scale | None = None, group: str | None = None, title: str = "", label: str | None = None,
    x_title: str = "Patients",
) -> alt.Chart:
    """Horizontal bars of counts per category, optionally grouped (bars side by side) by ``group``.

    ``label``: a text column printed at the end of each bar (e.g. "11 (68.8%)").
    """
    y = alt.Y(f"{category}:N", sort=list(order) if order else None, title=None)
    x = alt.X(f"{count}:Q", title=x_title, axis=alt.Axis(tickMinStep=1, format=",d"))
    base = alt.Chart(df, title=title).encode(y=y, x=x)
    if group:
        groups = list(dict.fromkeys(df[group]))
        colour_enc = alt.Color(f"{group}:N", sort=groups, title=None, legend=alt.Legend(orient="bottom"),
                               scale=alt.Scale(domain=groups, range=GROUP_COLOURS[:len(groups)]))
        base = base.encode(yOffset=alt.YOffset(f"{group}:N", sort=groups), color=colour_enc)
    elif colour is not None:
        base = base.encode(color=alt.Color(f"{category}:N", scale=colour, legend=None))
    tooltip = [category, count] + ([group] if group else []) + ([label] if label else [])
    bars = base.mark_bar().encode(tooltip=tooltip)
    layers = [bars]
    if label:
        layers.append(base.mark_text(align="left", dx=3).encode(text=f"{label}:N", color=alt.value("#333")))
    height = max(160, 36 * df[category].nunique() * (df[group].nunique() if group else 1))
    return alt.layer(*layers).properties(width=WIDTH, height=height)


# --- survival -----------------------------------------------------------------------


def km_plot(
    curves: pd.DataFrame,
    medians: pd.DataFrame | None = None,
    at_risk: pd.DataFrame | None = None,
    *,
    ticks: Sequence[float] = (0, 6, 12, 18, 24, 30, 36),
    title: str = "",
    y_title: str = "Overall survival",
    x_title: str = "Months since first cycle",
) -> alt.TopLevelMixin:
    """Kaplan-Meier step curves with CI bands, censor marks, median drop lines, and at-risk table.

    ``curves``: stratum, time, survival, ci_lower, ci_upper, censored (``KaplanMeier.curve``
    rows with a stratum column). ``medians``: stratum, median (None/NaN when not reached).
    ``at_risk``: stratum, time, at_risk -> drawn as a table under the plot, same x axis.
    """
    x_max = float(max(ticks[-1], curves["time"].max() if len(curves) else 0))
    x_scale = alt.Scale(domain=[0, x_max], nice=False)
    x = alt.X("time:Q", scale=x_scale, axis=alt.Axis(values=list(ticks), title=x_title))
    strata = list(dict.fromkeys(curves["stratum"]))
    legend = alt.Legend(orient="top") if len(strata) > 1 else None
    colour = alt.Color("stratum:N", sort=strata, title=None, legend=legend)

    base = alt.Chart(curves).encode(x=x, color=colour)
    band = base.mark_area(interpolate="step-after", opacity=0.18).encode(
        y=alt.Y("ci_lower:Q", scale=alt.Scale(domain=[0, 1]), title=y_title),
        y2="ci_upper:Q",
    )
    line = base.mark_line(interpolate="step-after", strokeWidth=2).encode(
        y=alt.Y("survival:Q", axis=alt.Axis(format="%")),
        tooltip=[alt.Tooltip("stratum:N"), alt.Tooltip("time:Q", format=".1f", title="months"),
                 alt.Tooltip("survival:Q", format=".3f"), alt.Tooltip("ci_lower:Q", format=".3f"),
                 alt.Tooltip("ci_upper:Q", format=".3f"), "at_risk:Q"],
    )
    censor = base.transform_filter(alt.datum.censored > 0).mark_point(shape="cross", size=60, filled=True).encode(
        y="survival:Q", tooltip=[alt.Tooltip("time:Q", format=".1f", title="censored at (months)"), "censored:Q"]
    )
    layers = [band, line, censor]

    half = alt.Chart(pd.DataFrame({"y": [0.5]})).mark_rule(strokeDash=[2, 3], color="#888").encode(y="y:Q")
    layers.append(half)
    if medians is not None:
        reached = medians.dropna(subset=["median"])
        if len(reached):
            drops = reached.assign(zero=0.0, half=0.5)
            layers.append(
                alt.Chart(drops).mark_rule(strokeDash=[4, 3]).encode(
                    x=alt.X("median:Q", scale=x_scale), y="zero:Q", y2="half:Q",
                    color=alt.Color("stratum:N", sort=strata, legend=None),
                    tooltip=[alt.Tooltip("stratum:N"), alt.Tooltip("median:Q", format=".1f", title="median (months)")],
                )
            )
    plot = alt.layer(*layers).properties(width=WIDTH, height=340, title=title)
    if at_risk is None or at_risk.empty:
        return plot
    table_chart = (
        alt.Chart(at_risk, title=alt.TitleParams("Number at risk", fontSize=11, anchor="start"))
        .mark_text(fontSize=11)
        .encode(
            x=alt.X("time:Q", scale=x_scale, axis=None),
            y=alt.Y("stratum:N", sort=strata, title=None,
                    axis=alt.Axis(domain=False, ticks=False, labelPadding=14) if len(strata) > 1 else None),
            text="at_risk:Q",
            color=alt.Color("stratum:N", sort=strata, legend=None),
        )
        .properties(width=WIDTH, height=max(20, 18 * len(strata)), view=alt.ViewConfig(stroke=None))
    )
    return alt.vconcat(plot, table_chart, spacing=4).resolve_scale(color="shared")


def forest_plot(rows: pd.DataFrame, *, title: str = "") -> alt.TopLevelMixin:
    """Hazard ratios with their 95% CI, one line per subgroup term, on a log scale with a line at
    HR = 1 (as trial publications draw them), and the numbers beside.

    ``rows``: label, hr, hr_lower, hr_upper (finite), in display order.
    """
    order = list(rows["label"])
    bounds = rows[["hr_lower", "hr_upper", "hr"]].to_numpy(float)
    low, high = float(np.nanmin(bounds)), float(np.nanmax(bounds))
    domain = [min(low, 1.0) / 1.2, max(high, 1.0) * 1.2]
    y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=320))
    x = alt.X("hr:Q", scale=alt.Scale(type="log", domain=domain, nice=False),
              title="Hazard ratio (95% CI), log scale")
    tooltip = [alt.Tooltip("label:N", title="term"), alt.Tooltip("hr:Q", format=".2f", title="HR"),
               alt.Tooltip("hr_lower:Q", format=".2f", title="95% CI lower"),
               alt.Tooltip("hr_upper:Q", format=".2f", title="95% CI upper")]
    base = alt.Chart(rows).encode(y=y)
    whiskers = base.mark_rule(strokeWidth=2, color="#4c78a8").encode(
        x=alt.X("hr_lower:Q", scale=alt.Scale(type="log", domain=domain, nice=False)), x2="hr_upper:Q")
    points = base.mark_square(size=70, color="#4c78a8").encode(x=x, tooltip=tooltip)
    one = alt.Chart(pd.DataFrame({"hr": [1.0]})).mark_rule(strokeDash=[4, 3], color="#888").encode(
        x=alt.X("hr:Q", scale=alt.Scale(type="log", domain=domain, nice=False)))
    height = max(60, 26 * len(order))
    plot = alt.layer(one, whiskers, points).properties(width=420, height=height, title=title)
    text = rows.assign(estimate=[f"{h:.2f} ({lo:.2f}–{hi:.2f})" for h, lo, hi in
                                 rows[["hr", "hr_lower", "hr_upper"]].itertuples(index=False)])
    numbers = alt.Chart(text, title=alt.TitleParams("HR (95% CI)", fontSize=11, anchor="start")).mark_text(
        align="left", fontSize=11).encode(y=alt.Y("label:N", sort=order, axis=None), text="estimate:N").properties(
        width=130, height=height, view=alt.ViewConfig(stroke=None))
    return alt.hconcat(plot, numbers, spacing=6)


# --- response -----------------------------------------------------------------------


def waterfall(df: pd.DataFrame, *, title: str = "") -> alt.Chart:
    """Bars of the best % change in the sum of diameters per patient, sorted, coloured by BOR.

    ``df``: patient, best_pct_change, best_overall_response. Dashed lines at -30% (PR)
    and +20% (PD), RECIST 1.1.
    """
    ordered = df.sort_values("best_pct_change", ascending=False, kind="stable").reset_index(drop=True)
    ordered["rank"] = np.arange(1, len(ordered) + 1)
    bars = alt.Chart(ordered).mark_bar().encode(
        x=alt.X("rank:O", axis=alt.Axis(labels=False, ticks=False, title="Patients (sorted)")),
        y=alt.Y("best_pct_change:Q", title="Best change in sum of diameters (%)"),
        color=alt.Color("best_overall_response:N", scale=response_scale(ordered["best_overall_response"]),
                        title="Best response"),
        tooltip=["patient:N", alt.Tooltip("best_pct_change:Q", format=".1f", title="best % change"),
                 alt.Tooltip("best_overall_response:N", title="best response")],
    )
    lines = pd.DataFrame({"y": [-30.0, 20.0], "label": ["-30% (PR)", "+20% (PD)"]})
    rules = alt.Chart(lines).mark_rule(strokeDash=[5, 4], color="#444").encode(y="y:Q")
    text = alt.Chart(lines).mark_text(align="left", dx=4, dy=-6, color="#444").encode(
        y="y:Q", x=alt.value(0), text="label:N"
    )
    return alt.layer(bars, rules, text).properties(width=WIDTH, height=340, title=title)


def swimmer(
    lanes: pd.DataFrame, cycles: pd.DataFrame, assessments: pd.DataFrame, *, title: str = ""
) -> alt.Chart:
    """One lane per patient, time in months since the first cycle.

    ``lanes``: patient, treatment_end (months of the last cycle), followup_end (months),
    outcome ('Death' / 'Alive at last contact'); lanes keep the frame's order.
    ``cycles``: patient, month, cycle_number. ``assessments``: patient, month, recist_response and
    optionally modality (``RECIST_MODALITY`` dots or ``PET_MODALITY`` hollow diamonds, own legend).
    """
    order = list(lanes["patient"])
    y = alt.Y("patient:N", sort=order, title=None, axis=alt.Axis(labelFontSize=9, labelFont="monospace"))
    follow = alt.Chart(lanes).mark_rule(color="#bbbbbb", strokeWidth=2).encode(
        y=y, x=alt.X("zero:Q", title="Months since first cycle"), x2="followup_end:Q"
    ).transform_calculate(zero="0")
    treatment = alt.Chart(lanes).mark_bar(height=9, color="#4c78a8", opacity=0.55).encode(
        y=y, x="zero:Q", x2="treatment_end:Q",
        tooltip=["patient:N", alt.Tooltip("treatment_end:Q", format=".1f", title="last cycle (months)")],
    ).transform_calculate(zero="0")
    cycle_marks = alt.Chart(cycles).mark_tick(color="#08306b", thickness=2, size=12).encode(
        y=y, x="month:Q", tooltip=["patient:N", "cycle_number:Q", alt.Tooltip("month:Q", format=".1f")]
    )
    if "modality" not in assessments:
        assessments = assessments.assign(modality=RECIST_MODALITY)
    colour = alt.Color("recist_response:N", scale=response_scale(assessments["recist_response"]), title="Assessment")
    tooltip = ["patient:N", "modality:N", "recist_response:N", alt.Tooltip("month:Q", format=".1f")]
    kinds = [RECIST_MODALITY, PET_MODALITY]
    present = [k for k in kinds if (assessments["modality"] == k).any()] or kinds[:1]
    shape = alt.Shape("modality:N", title="Modality", legend=alt.Legend(labelLimit=300),
                      scale=alt.Scale(domain=present, range=[{RECIST_MODALITY: "circle",
                                                              PET_MODALITY: "diamond"}[k] for k in present]))
    recist = alt.Chart(assessments).transform_filter(alt.datum.modality == RECIST_MODALITY).mark_point(
        filled=True, size=55, stroke="#333", strokeWidth=0.5).encode(y=y, x="month:Q", color=colour, shape=shape,
                                                                     tooltip=tooltip)
    pet = alt.Chart(assessments).transform_filter(alt.datum.modality == PET_MODALITY).mark_point(
        filled=False, size=110, strokeWidth=2).encode(y=y, x="month:Q", color=colour, shape=shape, tooltip=tooltip)
    ends = alt.Chart(lanes).mark_point(size=90, filled=True, color="#222").encode(
        y=y, x="followup_end:Q",
        shape=alt.Shape("outcome:N", scale=alt.Scale(domain=["Death", "Alive at last contact"],
                                                      range=["cross", "triangle-right"]), title="End of follow-up"),
        tooltip=["patient:N", "outcome:N", alt.Tooltip("followup_end:Q", format=".1f", title="months")],
    )
    height = max(200, 26 * len(order) + 40)
    return (
        alt.layer(follow, treatment, cycle_marks, alt.layer(recist, pet), ends)  # PET and CT/MRI: one legend
        .resolve_scale(color="independent", shape="independent")
        .properties(width=WIDTH, height=height, title=title)
    )


# --- toxicity -----------------------------------------------------------------------


def grade_heatmap(df: pd.DataFrame, *, patient_order: Sequence[str] | None = None, title: str = "") -> alt.Chart:
    """Patients x CTCAE term, cell = worst post-baseline grade. ``df``: patient, ctcae_term, worst_grade."""
    y = alt.Y("patient:N", sort=list(patient_order) if patient_order is not None else None, title=None,
              axis=alt.Axis(labelFontSize=9, labelFont="monospace"))
    x = alt.X("ctcae_term:N", title=None, axis=alt.Axis(labelAngle=-30, labelLimit=260, labelOverlap=False))
    base = alt.Chart(df).encode(x=x, y=y)
    cells = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color("worst_grade:O", scale=GRADE_SCALE, title="Worst grade"),
        tooltip=["patient:N", "ctcae_term:N", "worst_grade:O"],
    )
    text = base.mark_text(fontSize=10).encode(text="worst_grade:O", color=alt.value("#222"))
    n = df["patient"].nunique()
    return alt.layer(cells, text).properties(width=WIDTH, height=22 * n + 150, title=title)  # + term labels


def grade_count_heatmap(df: pd.DataFrame, *, title: str = "") -> alt.Chart:
    """CTCAE term x worst grade, cell = patients (for cohorts too large for one row per patient).

    ``df``: ctcae_term, worst_grade, n.
    """
    base = alt.Chart(df).encode(
        x=alt.X("worst_grade:O", title="Worst grade"), y=alt.Y("ctcae_term:N", title=None)
    )
    cells = base.mark_rect().encode(
        color=alt.Color("n:Q", scale=alt.Scale(scheme="orangered"), title="Patients"),
        tooltip=["ctcae_term:N", "worst_grade:O", "n:Q"],
    )
    text = base.mark_text(fontSize=10).encode(text=alt.Text("n:Q", format=","))
    return alt.layer(cells, text).properties(width=WIDTH // 2, height=30 * df["ctcae_term"].nunique() + 50, title=title)


def ctcae_bands(thresholds: pd.DataFrame, y_min: float, y_max: float) -> pd.DataFrame:
    """Value ranges of each grade, clipped to [y_min, y_max]: grade, lower, upper.

    Low direction: grade g covers values below its threshold and not below any higher
    grade's; high direction mirrors it. Empty or out-of-view bands are dropped.
    """
    if thresholds.empty:
        return pd.DataFrame(columns=["grade", "lower", "upper"])
    low = thresholds["direction"].iloc[0] == "low"
    t = thresholds.set_index("grade")["threshold"].sort_index()
    rows = []
    for grade, threshold in t.items():
        higher = t[t.index > grade]
        if low:
            lower = max([y_min, *higher.tolist()])
            upper = min(threshold, y_max)
        else:
            lower = max(threshold, y_min)
            upper = min([y_max, *higher.tolist()])
        if upper > lower:
            rows.append((int(grade), float(lower), float(upper)))
    return pd.DataFrame(rows, columns=["grade", "lower", "upper"])


def value_domain(
    values: pd.Series, thresholds: pd.DataFrame | None = None, *, pad: float = 0.06
) -> tuple[float, float]:
    """A y range showing the values (1st-99th percentile when there are many) and the grade-1
    threshold, so the first CTCAE boundary is always in view."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        lo, hi = 0.0, 1.0
    elif len(v) > 1000:
        lo, hi = float(v.quantile(0.01)), float(v.quantile(0.99))
    else:
        lo, hi = float(v.min()), float(v.max())
    if thresholds is not None and len(thresholds):
        first = thresholds.sort_values("grade")["threshold"].iloc[0]
        lo, hi = min(lo, float(first)), max(hi, float(first))
    span = (hi - lo) or abs(hi) or 1.0
    return (lo - pad * span, hi + pad * span)


def sample_bands(
    thresholds_for: Callable[[float, float, float], pd.DataFrame], samples: pd.DataFrame,
    y_domain: tuple[float, float], x_end: float,
) -> pd.DataFrame:
    """Grade bands that follow each sample's own limits: month, grade, lower, upper (steps).

    ``samples``: month, lln, uln, baseline_value (one patient's samples of one analyte).
    ``thresholds_for(lln, uln, baseline)``: the grade thresholds for those limits (grade,
    threshold, direction; ``data.ctcae_thresholds``). The last step is carried to ``x_end``.
    """
    limits = samples[["month", "lln", "uln", "baseline_value"]].sort_values("month")
    limits = pd.concat([limits, limits.tail(1).assign(month=max(x_end, float(limits["month"].max())))])
    limits = limits.drop_duplicates("month", keep="last")
    parts, by_limits = [], {}
    for row in limits.itertuples(index=False):
        key = (row.lln, row.uln, row.baseline_value)  # limits rarely change: compute each set once
        if key not in by_limits:
            by_limits[key] = ctcae_bands(thresholds_for(row.lln, row.uln, row.baseline_value), *y_domain)
        if not by_limits[key].empty:  # (pandas no longer wants empty frames in a concat)
            parts.append(by_limits[key].assign(month=row.month))
    if not parts:
        return pd.DataFrame(columns=["month", "grade", "lower", "upper"])
    bands = pd.concat(parts, ignore_index=True)
    # a grade absent at some sample (band out of view) must not be interpolated across
    full = pd.MultiIndex.from_product([sorted(bands["grade"].unique()), sorted(limits["month"].unique())],
                                      names=["grade", "month"])
    bands = bands.set_index(["grade", "month"]).reindex(full).reset_index()
    missing = bands["lower"].isna()
    bands.loc[missing, ["lower", "upper"]] = y_domain[0]
    return bands[["month", "grade", "lower", "upper"]]


def lab_trajectory(
    *,
    lines: pd.DataFrame | None = None,
    summary: pd.DataFrame | None = None,
    bands: pd.DataFrame | None = None,
    cycles: pd.DataFrame | None = None,
    y_domain: tuple[float, float],
    unit: str,
    title: str = "",
    x_title: str = "Months since first cycle",
    width: int = WIDTH,
    height: int = 300,
) -> alt.LayerChart:
    """A lab analyte over time with CTCAE grade bands and vertical cycle markers.

    ``lines``: patient, month, value (one line per patient). ``summary``: month, median, q1,
    q3, n (median line with an interquartile band; for large cohorts). ``bands``: grade,
    lower, upper, constant (or with a ``month`` column: per-sample limits, drawn as steps).
    ``cycles``: month, label -> dashed vertical rules.
    """
    months_seen = [f["month"] for f in (lines, summary, cycles, bands) if f is not None and len(f) and "month" in f]
    x_lo = min(float(m.min()) for m in months_seen) if months_seen else 0.0
    x_hi = max(float(m.max()) for m in months_seen) if months_seen else 1.0
    x_scale = alt.Scale(domain=[min(x_lo, 0.0), x_hi], nice=False)
    y_scale = alt.Scale(domain=list(y_domain), nice=False, zero=False)

    def x(field: str = "month") -> alt.X:
        return alt.X(f"{field}:Q", scale=x_scale, title=x_title)

    def y(field: str) -> alt.Y:
        return alt.Y(f"{field}:Q", scale=y_scale, title=unit)

    layers = []
    if bands is not None and len(bands):
        colour = alt.Color("grade:O", scale=alt.Scale(domain=[1, 2, 3, 4], range=GRADE_COLOURS[1:]),
                           legend=alt.Legend(title="CTCAE grade"))
        if "month" in bands:  # limits that change from sample to sample: steps
            layers.append(alt.Chart(bands).mark_area(opacity=0.45, interpolate="step-after", clip=True).encode(
                x=x(), y=y("lower"), y2="upper:Q", color=colour, detail="grade:O"))
        else:  # constant limits: bands across the plot
            layers.append(alt.Chart(bands).mark_rect(opacity=0.45, clip=True).encode(
                y=y("lower"), y2="upper:Q", color=colour,
                tooltip=["grade:O", alt.Tooltip("lower:Q", format=".3g"), alt.Tooltip("upper:Q", format=".3g")]))
    if cycles is not None and len(cycles):
        layers.append(alt.Chart(cycles).mark_rule(strokeDash=[3, 3], color="#555").encode(
            x=x(), tooltip=["label:N", alt.Tooltip("month:Q", format=".1f")]))
        layers.append(alt.Chart(cycles).mark_text(dy=-2, fontSize=9, color="#555", baseline="bottom").encode(
            x=x(), y=alt.value(0), text="label:N"))
    if summary is not None and len(summary):
        layers.append(alt.Chart(summary).mark_area(opacity=0.3, color="#4c78a8", clip=True).encode(
            x=x(), y=y("q1"), y2="q3:Q"))
        layers.append(alt.Chart(summary).mark_line(color="#1f4e79", strokeWidth=2, point=True, clip=True).encode(
            x=x(), y=y("median"),
            tooltip=[alt.Tooltip("month:Q", format=".0f"), alt.Tooltip("median:Q", format=".2f"),
                     alt.Tooltip("q1:Q", format=".2f"), alt.Tooltip("q3:Q", format=".2f"), "n:Q"]))
    if lines is not None and len(lines):
        layers.append(alt.Chart(lines).mark_line(point=alt.OverlayMarkDef(size=18), strokeWidth=1.2, opacity=0.85,
                                                 clip=True).encode(
            x=x(), y=y("value"),
            color=alt.Color("patient:N", legend=None, scale=alt.Scale(scheme="tableau20")),
            detail="patient:N",
            tooltip=["patient:N", alt.Tooltip("month:Q", format=".1f"), alt.Tooltip("value:Q", format=".2f")]))
    return alt.layer(*layers).resolve_scale(color="independent").properties(width=width, height=height, title=title)


# --- performance status ---------------------------------------------------------------


def slope_chart(
    pairs: pd.DataFrame, medians: pd.DataFrame, *, measure: str, y_domain: tuple[float, float],
    reverse: bool = False, title: str = "",
) -> alt.Chart:
    """Before -> after, one line per patient (``pairs``: patient, phase, score, plotted, change)
    or per before/after combination with width by patients (``pairs`` has an ``n`` column).

    ``plotted`` is the jittered score; ``medians``: phase, median.
    """
    phases = ["Before", "After"]
    x = alt.X("phase:N", sort=phases, title=None, scale=alt.Scale(paddingOuter=0.3), axis=alt.Axis(labelAngle=0))
    y = alt.Y("plotted:Q", title=measure, scale=alt.Scale(domain=list(y_domain), reverse=reverse, nice=False),
              axis=alt.Axis(tickMinStep=1 if y_domain[1] - y_domain[0] < 20 else 10))
    changes = ["Improved", "Unchanged", "Worsened"]
    colour = alt.Color("change:N", scale=alt.Scale(domain=changes, range=["#1a9850", "#9e9e9e", "#d73027"]),
                       title="Change", legend=alt.Legend(orient="bottom"))
    aggregated = "n" in pairs
    base = alt.Chart(pairs).encode(x=x, y=y, color=colour, detail="patient:N")
    tooltip = ["patient:N", "phase:N", "score:Q", "change:N"] + (["n:Q"] if aggregated else [])
    line = base.mark_line(opacity=0.75).encode(
        strokeWidth=alt.StrokeWidth("n:Q", title="Patients", scale=alt.Scale(range=[1, 14])) if aggregated
        else alt.value(1.4),
        tooltip=tooltip,
    )
    points = base.mark_point(filled=True, size=30).encode(tooltip=tooltip)
    median_line = alt.Chart(medians).mark_line(color="black", strokeWidth=3, strokeDash=[6, 3]).encode(
        x=x, y=alt.Y("median:Q", scale=alt.Scale(domain=list(y_domain), reverse=reverse, nice=False))
    )
    median_points = alt.Chart(medians).mark_point(shape="diamond", size=160, filled=True, color="black").encode(
        x=x, y="median:Q", tooltip=["phase:N", alt.Tooltip("median:Q", title="median")]
    )
    median_text = alt.Chart(medians).mark_text(dx=14, align="left", fontWeight="bold").encode(
        x=x, y="median:Q", text=alt.Text("median:Q", format=".4~g")
    )
    return alt.layer(line, points, median_line, median_points, median_text).properties(
        width=WIDTH // 2, height=460, title=title
    )


def jitter_pairs(
    frame: pd.DataFrame, before: str, after: str, *, step: float, higher_is_better: bool, key: str = "patient_key"
) -> pd.DataFrame:
    """Long before/after frame for ``slope_chart``: one row per patient and phase.

    Patients sharing the same (before, after) pair are spread evenly around the score by
    ``step`` (deterministic, so the chart does not move on reruns).
    """
    pairs = frame[[key, before, after]].dropna().sort_values([before, after, key]).copy()
    size = pairs.groupby([before, after])[key].transform("size")
    index = pairs.groupby([before, after]).cumcount()
    offset = (index - (size - 1) / 2) * step / np.maximum(size, 1)  # spread within +/- step / 2
    diff = pairs[after] - pairs[before]
    better = diff > 0 if higher_is_better else diff < 0
    pairs["change"] = np.where(diff == 0, "Unchanged", np.where(better, "Improved", "Worsened"))
    pairs["patient"] = short_key(pairs[key]).to_numpy()
    long = []
    for phase, column in (("Before", before), ("After", after)):
        part = pairs[["patient", "change"]].copy()
        part["phase"] = phase
        part["score"] = pairs[column].astype(float).to_numpy()
        part["plotted"] = part["score"] + offset.to_numpy()
        long.append(part)
    return pd.concat(long, ignore_index=True)


def aggregate_pairs(frame: pd.DataFrame, before: str, after: str, *, higher_is_better: bool) -> pd.DataFrame:
    """Before/after combinations with their patient counts (``slope_chart`` with line widths).

    ``frame``: one row per patient, or the combinations already counted (column ``n``)."""
    if "n" in frame:
        counts = frame.dropna(subset=[before, after]).groupby([before, after])["n"].sum()
        counts = counts[counts > 0].sort_values(ascending=False, kind="stable").reset_index()
    else:
        counts = frame[[before, after]].dropna().value_counts().rename("n").reset_index()
    diff = counts[after] - counts[before]
    better = diff > 0 if higher_is_better else diff < 0
    counts["change"] = np.where(diff == 0, "Unchanged", np.where(better, "Improved", "Worsened"))
    counts["patient"] = counts[before].astype(int).astype(str) + " → " + counts[after].astype(int).astype(str)
    long = []
    for phase, column in (("Before", before), ("After", after)):
        part = counts[["patient", "change", "n"]].copy()
        part["phase"] = phase
        part["score"] = counts[column].astype(float)
        part["plotted"] = part["score"]
        long.append(part)
    return pd.concat(long, ignore_index=True)

