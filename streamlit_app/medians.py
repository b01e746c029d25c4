"""The Kaplan-Meier median of one endpoint for a selection, and how the pages print it."""

from __future__ import annotations

from prrt.analytics import KaplanMeier, kaplan_meier
from prrt.analytics.survival import MedianSurvival
from streamlit_app import data


def endpoint_fit(endpoint: str, cohort_filters) -> KaplanMeier | None:
    """The Kaplan-Meier fit of ``endpoint`` (marts.fct_time_to_event) for the selection; None without rows."""
    counts = data.time_to_event_counts(endpoint, cohort_filters)
    return kaplan_meier(counts["months"], counts["event"], weights=counts["n"]) if len(counts) else None


def endpoint_median(endpoint: str, cohort_filters) -> MedianSurvival | None:
    """The log-log median (and CI) of ``endpoint`` for the selection, as the Cohort page shows it."""
    fit = endpoint_fit(endpoint, cohort_filters)
    return fit.median("log-log") if fit is not None else None


def median_text(m: MedianSurvival | None) -> str:
    """'23.0 (19.7–NR)': a Kaplan-Meier median and its CI, NR where not reached."""
    if m is None or m.median is None:
        return "not reached"
    lower = f"{m.ci_lower:.1f}" if m.ci_lower is not None else "NR"
    upper = f"{m.ci_upper:.1f}" if m.ci_upper is not None else "NR"
    return f"{m.median:.1f} ({lower}–{upper})"
