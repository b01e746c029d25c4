"""Response: best overall response (RECIST 1.1), ORR/DCR with exact CIs, waterfall and swimmer plots."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from prrt.analytics import response_rates, time_to_response
from prrt.analytics.response import ResponseRates, TimeSummary
from prrt.analytics.survival import MedianSurvival
from prrt.config import dbt_var
from streamlit_app import charts, data, filters
from streamlit_app.medians import endpoint_fit, median_text

DEFINITIONS = {
    "Unconfirmed (as in the paper)": "best_overall_response",
    "Confirmed (RECIST 1.1 as admiralonco: CR/PR repeated ≥ 28 days later, ≤ 1 NE and no SD between)":
        "confirmed_best_overall_response",
}
CATEGORIES = ["CR", "PR", "SD", "PD", "NE/missing"]
MAX_WATERFALL_BARS = 2_000
MAX_LANES = 200


@dataclass
class ResponsePage:
    rates: dict[str, ResponseRates]  # definition label -> rates
    distribution: pd.DataFrame  # definition, response, n, pct
    waterfall: pd.DataFrame  # the bars drawn: patient, patient_key, best_pct_change, best_overall_response
    n_waterfall: int  # patients with a best change (bars before thinning)
    dor: MedianSurvival | None  # Kaplan-Meier median duration of response (months), responders only
    n_dor: int  # responders with a DoR row
    dor_events: int  # of them, progressions or deaths
    ttr: TimeSummary  # time to response (months), responders only, no censoring


def load(cohort: filters.Cohort, *, evaluable_only: bool = False) -> ResponsePage:
    """Rates and distributions from the selection's patient counts by best response (grouped in
    the warehouse), and the waterfall's bars (at most MAX_WATERFALL_BARS of the sorted list)."""
    rates = {}
    for label, column in DEFINITIONS.items():
        counts = data.patient_counts((column,), cohort.filters)
        rates[label] = response_rates(counts[column], weights=counts["n"], evaluable_only=evaluable_only)
    rows = []
    for label, r in rates.items():
        for category in CATEGORIES:
            n = r.counts[category]
            rows.append({"definition": label.split(" (")[0], "response": category, "n": n,
                         "pct": 100.0 * n / cohort.n if cohort.n else float("nan")})
    distribution = pd.DataFrame(rows)

    best = data.waterfall(cohort.filters, MAX_WATERFALL_BARS)  # thinned as charts.thin_sorted, in the warehouse
    n_bars = int(best["n_patients"].iloc[0]) if len(best) else 0
    km = endpoint_fit("DOR", cohort.filters)
    ttr = data.time_to_event_counts("TTR", cohort.filters)
    return ResponsePage(rates, distribution, waterfall_frame(best), n_bars,
                        km.median("log-log") if km else None, km.n if km else 0, km.events if km else 0,
                        time_to_response(ttr["months"], weights=ttr["n"]))


def waterfall_frame(best: pd.DataFrame) -> pd.DataFrame:
    """data.waterfall rows: patient (short label), patient_key, best_pct_change, best_overall_response."""
    best = best.drop(columns="n_patients")
    best.insert(0, "patient", charts.short_key(best["patient_key"]).to_numpy())
    return best.reset_index(drop=True)


def swimmer_frames(cohort: filters.Cohort, lanes: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Lanes (longest follow-up first, at most ``lanes``) from fct_survival, their cycles and
    post-baseline assessments (read for those patients only)."""
    keys = data.longest_followup(cohort.filters, lanes)
    s = data.survival_for_patients(keys)[["patient_key", "os_months", "os_event"]].dropna()
    s = s.sort_values(["os_months", "patient_key"], ascending=[False, True])
    c = data.treatment_cycles_for_patients(keys)[["patient_key", "cycle_number", "days_from_first_cycle"]].copy()
    c["month"] = charts.months(c["days_from_first_cycle"].astype(float))
    a = data.tumour_assessments_for_patients(keys)
    a = a.loc[a["is_post_baseline"].fillna(False).astype(bool), ["patient_key", "days_from_first_cycle",
                                                                  "recist_response", "is_recist"]].copy()
    a["month"] = charts.months(a["days_from_first_cycle"].astype(float))
    # fct_tumour_assessment.is_recist (seed imaging_modalities): CT/MRI count for RECIST 1.1, PET is shown beside
    a["modality"] = [charts.RECIST_MODALITY if r else charts.PET_MODALITY for r in a["is_recist"].fillna(False)]
    lanes_frame = s.merge(c.groupby("patient_key", as_index=False)["month"].max(), on="patient_key", how="left")
    lanes_frame = lanes_frame.rename(columns={"os_months": "followup_end", "month": "treatment_end"})
    lanes_frame["treatment_end"] = lanes_frame["treatment_end"].fillna(0.0)
    lanes_frame["outcome"] = lanes_frame["os_event"].map({1: "Death", 0: "Alive at last contact"})
    for frame in (lanes_frame, c, a):
        frame["patient"] = charts.short_key(frame["patient_key"]).to_numpy()
    return lanes_frame, c, a


def _rate(p) -> str:
    return f"{p.k:,}/{p.n:,} ({100 * p.proportion:.1f}%)"


def _ci(p) -> str:
    return f"95% CI {100 * p.ci_lower:.1f}–{100 * p.ci_upper:.1f}% (Clopper-Pearson)"


def main() -> None:
    st.title("Response")
    cohort = filters.cohort()
    evaluable_only = st.toggle("Evaluable patients only (exclude NE/missing from the denominator)", value=False,
                               key="response_evaluable_only")
    page = load(cohort, evaluable_only=evaluable_only)

    st.subheader("Objective response and disease control")
    for label, r in page.rates.items():
        st.markdown(f"**{label}**")
        short = label.split(" (")[0].lower()
        c = st.columns(3)
        c[0].metric(f"ORR, {short}", _rate(r.orr), help="CR + PR")
        c[0].caption(_ci(r.orr))
        c[1].metric(f"DCR, {short}", _rate(r.dcr), help="CR + PR + SD")
        c[1].caption(_ci(r.dcr))
        c[2].metric(f"CR / PR / SD / PD, {short}", " / ".join(f"{r.counts[k]:,}" for k in ("CR", "PR", "SD", "PD")),
                    help=f"NE or missing: {r.counts['NE/missing']:,}")
    rates_table = pd.DataFrame([
        {"Definition": label.split(" (")[0], "Measure": p.label, "Patients": p.k, "N": p.n,
         "%": round(100 * p.proportion, 1), "95% CI lower (%)": round(100 * p.ci_lower, 1),
         "95% CI upper (%)": round(100 * p.ci_upper, 1), "Method": p.method}
        for label, r in page.rates.items() for p in (r.orr, r.dcr)
    ])
    charts.table(rates_table, "response_rates")

    st.subheader("Duration of response and time to response")
    responders = ("confirmed" if dbt_var("dor_responders") == "confirmed" else "unconfirmed") + " CR/PR"
    c = st.columns(3)
    c[0].metric("Median DoR, months (95% CI, log-log)", median_text(page.dor) if page.n_dor else "–",
                help="Kaplan-Meier, from the first CR/PR to progression (CT/MRI) or death; censored at the last "
                     "adequate assessment (marts.fct_time_to_event, endpoint DOR)")
    c[0].caption(f"{page.n_dor:,} responders ({responders}), {page.dor_events:,} progressed or died")
    t = page.ttr
    c[1].metric("Median TTR, months (range)",
                f"{t.median:.1f} ({t.minimum:.1f}–{t.maximum:.1f})" if t.n else "–",
                help="From the first cycle to the first CR/PR on CT/MRI; responders only, no censoring "
                     "(marts.fct_time_to_event, endpoint TTR)")
    if t.n:
        c[1].caption(f"{t.n:,} responders ({responders}); interquartile range {t.q1:.1f}–{t.q3:.1f} months")

    st.subheader("Best overall response")
    dist = page.distribution.copy()
    dist["label"] = [f"{n:,} ({p:.1f}%)" for n, p in zip(dist["n"], dist["pct"], strict=True)]
    charts.show(charts.counts_bar(dist, "response", order=CATEGORIES, group="definition", label="label"),
                "best_response_distribution")
    wide = dist.pivot(index="response", columns="definition", values="n").reindex(CATEGORIES)
    wide = wide[list(dict.fromkeys(dist["definition"]))].reset_index()
    charts.table(wide.rename(columns={"response": "Best response"}), "best_response_counts")

    st.subheader("Waterfall: best change in the sum of diameters")
    shown = page.waterfall
    if shown.empty:
        st.info("No post-baseline measurement of the sum of diameters for these patients.")
    else:
        thinned = len(shown) < page.n_waterfall
        st.caption(f"{page.n_waterfall:,} of {cohort.n:,} patients have a post-baseline sum of diameters; best = "
                   "lowest post-baseline % change from baseline. Dashed lines: RECIST 1.1 −30% (PR) and +20% (PD)."
                   + (f" Every {page.n_waterfall / len(shown):.0f}th patient of the sorted list is drawn "
                      f"({len(shown):,} bars, as in the table); the CSV has all." if thinned else ""))
        charts.show(charts.waterfall(shown), "waterfall")
        columns = {"patient": "Patient", "patient_key": "Patient key", "best_pct_change": "Best % change",
                   "best_overall_response": "Best response"}
        charts.table(shown.rename(columns=columns), "waterfall_data", height=250,
                     csv=(lambda: waterfall_frame(data.waterfall(cohort.filters)).rename(columns=columns))
                     if thinned else None)

    st.subheader("Swimmer plot")
    n_lanes = cohort.n if cohort.n <= 60 else st.slider("Lanes (longest follow-up first)", 10,
                                                        min(cohort.n, MAX_LANES), 50, key="response_lanes")
    lanes, cycles, assessments = swimmer_frames(cohort, n_lanes)
    if lanes.empty:
        st.info("No follow-up recorded for these patients.")
    else:
        st.caption("Grey: follow-up from the first cycle; blue bar: first to last cycle, ticks: cycles; "
                   "dots: CT/MRI assessments by RECIST 1.1 response; hollow diamonds: Ga-68 DOTATATE PET, reported "
                   "beside RECIST and not counted for it (never a baseline, best response, progression or "
                   "waterfall bar); end marker: death (×) or alive at last contact (▸)."
                   + (f" {len(lanes):,} of {cohort.n:,} patients shown." if len(lanes) < cohort.n else ""))
        charts.show(charts.swimmer(lanes, cycles, assessments), "swimmer")


if __name__ == "__main__":
    main()
