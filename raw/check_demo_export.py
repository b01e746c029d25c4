#!/usr/bin/env python3
"""Check the demo export against the paper, independently of the generator.

Reads ``raw/demo/*.csv`` (or ``--demo DIR``) with pandas and recomputes, with the
CONTRACT definitions (v2), what the warehouse will report: per patient sex, age at the
first cycle, cycles and cumulative activity, ECOG/KPS pre/post, the unconfirmed best
overall response (all against ``raw/paper_table1.csv``), the worst post-baseline
CTCAE v4.03 grade per term (Table 2), the deaths and the Kaplan-Meier median OS
(lifelines).  Also checks the contract's rejection rules.  Prints what it found and
exits 1 on any mismatch.

    python raw/check_demo_export.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter

HERE = Path(__file__).resolve().parent
SEEDS = HERE.parent / "dbt" / "seeds"
DAYS_PER_MONTH = 30.4375
TABLE2 = {("anemia", 1): 7, ("anemia", 2): 3, ("white blood cell decreased", 1): 3,
          ("white blood cell decreased", 2): 3, ("creatinine increased", 1): 2,
          ("platelet count decreased", 1): 2}
TERMS = {"hemoglobin": "anemia", "wbc": "white blood cell decreased", "platelets": "platelet count decreased",
         "creatinine": "creatinine increased", "ast": "aspartate aminotransferase increased",
         "alt": "alanine aminotransferase increased"}
MARGINS = {"hemoglobin": 0.2, "wbc": 0.2, "platelets": 5, "creatinine": 3}

failures: list[str] = []


def expect(ok: bool, message: str) -> None:
    if not ok:
        failures.append(message)


def ctcae_grade(analyte: str, v: float, lln: float, uln: float, base: float | None) -> int:
    """CTCAE v4.03 on the lab value alone (canonical units)."""
    if analyte == "hemoglobin":
        return 3 if v < 8 else 2 if v < 10 else 1 if v < lln else 0
    if analyte == "wbc":
        return 4 if v < 1 else 3 if v < 2 else 2 if v < 3 else 1 if v < lln else 0
    if analyte == "platelets":
        return 4 if v < 25 else 3 if v < 50 else 2 if v < 75 else 1 if v < lln else 0
    if analyte in ("ast", "alt"):
        return 4 if v > 20 * uln else 3 if v > 5 * uln else 2 if v > 3 * uln else 1 if v > uln else 0
    by_uln = 4 if v > 6 * uln else 3 if v > 3 * uln else 2 if v > 1.5 * uln else 1 if v > uln else 0
    by_base = 0 if base is None else 3 if v > 3 * base else 2 if v > 1.5 * base else 1 if v > base else 0
    return max(by_uln, by_base)


def edge_distance(analyte: str, v: float, lln: float, uln: float, base: float | None) -> float:
    edges = {"hemoglobin": [lln, 10, 8], "wbc": [lln, 3, 2, 1], "platelets": [lln, 75, 50, 25],
             "creatinine": [uln, 1.5 * uln, 3 * uln] + ([base, 1.5 * base] if base else [])}[analyte]
    return min(abs(v - e) for e in edges)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--demo", type=Path, default=HERE / "demo")
    demo = parser.parse_args().demo
    read = lambda name: pd.read_csv(demo / f"{name}.csv", dtype={"patient_id": str})  # noqa: E731
    paper = pd.read_csv(HERE / "paper_table1.csv").set_index("paper_patient")
    pts, mets, cyc, labs = read("patients"), read("metastases"), read("cycles"), read("labs")
    ps, ta, fu = read("performance_status"), read("tumour_assessments"), read("follow_up")
    for name, df in [("patients", pts), ("metastases", mets), ("cycles", cyc), ("labs", labs),
                     ("performance_status", ps), ("tumour_assessments", ta), ("follow_up", fu)]:
        print(f"{name}.csv: {len(df)} rows")
        expect(not df.duplicated().any(), f"{name}: exact duplicate rows")
        expect(df.patient_id.isin(pts.patient_id).all(), f"{name}: unknown patient_id")
    pts["pp"] = pts.full_name.str.extract(r"(\d+)$")[0].astype(int)
    pid = pts.set_index("pp").patient_id
    expect(pts.patient_id.str.fullmatch(r"BUMS-\d{6}").all() and pts.patient_id.is_unique, "patient_id format")
    for df, cols in [(pts, ["birth_date"]), (cyc, ["administration_date"]), (labs, ["sample_date"]),
                     (ps, ["assessment_date"]), (ta, ["assessment_date"]),
                     (fu, ["last_contact_date", "death_date"])]:
        for c in cols:
            df[c] = pd.to_datetime(df[c], format="%Y-%m-%d")

    cutoff = pd.Timestamp("2020-04-30")
    birth = pts.set_index("patient_id").birth_date
    for name, df, col in [("cycles", cyc, "administration_date"), ("labs", labs, "sample_date"),
                          ("performance_status", ps, "assessment_date"),
                          ("tumour_assessments", ta, "assessment_date"), ("follow_up", fu, "last_contact_date")]:
        expect((df[col] <= cutoff).all(), f"{name}: date after the data cut-off")
        expect((df[col] >= df.patient_id.map(birth)).all(), f"{name}: date before birth")
    expect(((cyc.activity > 0) & (cyc.activity <= 15) & (cyc.activity_unit == "GBq")).all(), "absurd activity")
    plaus = pd.read_csv(SEEDS / "lab_analytes.csv").set_index("analyte")
    expect(labs.value.between(labs.analyte.map(plaus.plausible_min), labs.analyte.map(plaus.plausible_max)).all(),
           "implausible lab value")

    # ---- per patient against Table 1
    first = cyc.groupby("patient_id").administration_date.min()
    last = cyc.groupby("patient_id").administration_date.max()
    rows = []
    for pp, t in paper.iterrows():
        p = pid[pp]
        me = pts[pts.patient_id == p].iloc[0]
        c = cyc[cyc.patient_id == p].sort_values("cycle_number")
        f, b = first[p], me.birth_date
        age = f.year - b.year - ((f.month, f.day) < (b.month, b.day))
        gaps = c.administration_date.diff().dt.days.dropna()
        expect(me.sex == t.sex and age == t.age, f"patient {pp}: sex/age")
        expect(len(c) == t.n_cycles and round(c.activity.sum(), 2) == round(t.cumulative_activity_gbq, 2)
               and abs(c.activity.sum() - t.cumulative_activity_gbq) < 1e-9, f"patient {pp}: cycles/activity")
        expect(c.activity.between(3.7, 7.4).all() and gaps.between(42, 56).all()
               and (c.activity.astype(str).str.split(".").str[-1].str.len() <= 3).all(), f"patient {pp}: cycle rules")
        expect(list(c.cycle_number) == list(range(1, len(c) + 1)), f"patient {pp}: cycle numbering")
        expect((f >= pd.Timestamp("2017-06-01")) and (last[p] <= cutoff), f"patient {pp}: outside June 2017-April 2020")
        sites = sorted(mets[mets.patient_id == p].site)
        expect(sites == sorted(str(t.metastases).split(";")) if isinstance(t.metastases, str) else sites == [],
               f"patient {pp}: metastases")
        for col in ["primary_site", "prior_surgery", "prior_chemotherapy", "prior_radiotherapy", "hypertension",
                    "diabetes", "baseline_imaging"]:
            expect(me[col] == t[col], f"patient {pp}: {col}")
        expect((pd.isna(me.krenning_score) and pd.isna(t.krenning_score)) or me.krenning_score == t.krenning_score,
               f"patient {pp}: krenning")

        # ECOG / KPS (contract v2): pre = last on/before first administration (<= 60 d), post = the FIRST
        # >= 90 d after the last administration (the paper: "at least three months after")
        a = ps[ps.patient_id == p].sort_values("assessment_date")
        pre = a[(a.assessment_date <= f) & (a.assessment_date >= f - pd.Timedelta(days=60))].iloc[-1]
        after = a[a.assessment_date >= last[p] + pd.Timedelta(days=90)]
        expect(len(after) > 0, f"patient {pp}: no ECOG/KPS >= 90 days after the last administration")
        post = after.iloc[0] if len(after) else a.iloc[-1]
        expect((pre.ecog, pre.kps, post.ecog, post.kps) == (t.ecog_pre, t.kps_pre, t.ecog_post, t.kps_post),
               f"patient {pp}: ECOG/KPS")

        # unconfirmed BOR (contract v2): CT/MRI only, after the first administration up to and including
        # the first PD, NE ignored, SD only at >= 42 days
        s = ta[(ta.patient_id == p) & (ta.assessment_date > f) & ta.modality.isin(["ct", "mri"])]
        first_pd = s[s.recist_response == "PD"].assessment_date.min()
        if not pd.isna(first_pd):
            s = s[s.assessment_date <= first_pd]
        s = s[(s.recist_response != "NE") & ~((s.recist_response == "SD") & ((s.assessment_date - f).dt.days < 42))]
        bor = next((x for x in ["CR", "PR", "SD", "PD"] if x in set(s.recist_response)), None)
        expect(bor == t.best_response, f"patient {pp}: BOR {bor} != {t.best_response}")
        # the RECIST 1.1 baseline: one CT/MRI at most 28 days before the first administration
        base_scan = ta[(ta.patient_id == p) & (ta.assessment_date < f)]
        expect(len(base_scan) == 1 and base_scan.recist_response.iloc[0] == "NE"
               and base_scan.modality.iloc[0] in ("ct", "mri")
               and (f - base_scan.assessment_date.iloc[0]).days <= 28, f"patient {pp}: baseline scan")
        pet = (ta[ta.patient_id == p].modality == "ga68_dotatate_pet").any()
        expect(pet == (t.followup_ga68_pet == "yes"), f"patient {pp}: follow-up PET")
        # RECIST consistency of the sums
        seq = ta[ta.patient_id == p].sort_values("assessment_date")
        b0, nadir = seq.sum_of_diameters_mm.iloc[0], seq.sum_of_diameters_mm.iloc[0]
        for _, r in seq.iloc[1:].iterrows():
            x = r.sum_of_diameters_mm
            want = "CR" if x == 0 else "PD" if x >= 1.2 * nadir and x - nadir >= 5 else "PR" if x <= 0.7 * b0 else "SD"
            expect(want == r.recist_response, f"patient {pp}: sum {x} vs {r.recist_response}")
            nadir = min(nadir, x)

        # follow-up
        fo = fu[fu.patient_id == p].iloc[0]
        end = fo.last_contact_date
        dead = fo.vital_status == "dead"
        if dead:
            expect(fo.death_date == end and end > post.assessment_date and end > last[p], f"patient {pp}: death")
        for df, col in [(labs, "sample_date"), (ps, "assessment_date"), (ta, "assessment_date")]:
            expect((df[df.patient_id == p][col] <= end).all(), f"patient {pp}: record after last contact")
        # CgA
        cga = labs[(labs.patient_id == p) & (labs.analyte == "chromogranin_a")]
        pl = labs[labs.patient_id == p]
        want = []
        if not pd.isna(t.cga_pre):
            want.append((pl.sample_date.min(), t.cga_pre))
        if not pd.isna(t.cga_post):
            want.append((pl.sample_date.max(), t.cga_post))
        expect(sorted(zip(cga.sample_date, cga.value)) == want and cga.lln.isna().all(), f"patient {pp}: CgA")
        rows.append(dict(pp=pp, patient_id=p, sex=me.sex, age=age, n_cycles=len(c),
                         gbq=round(c.activity.sum(), 2), ecog=f"{pre.ecog}/{post.ecog}", kps=f"{pre.kps}/{post.kps}",
                         bor=bor, os_days=(end - f).days, os_months=round((end - f).days / DAYS_PER_MONTH, 3),
                         dead=int(dead)))
    summary = pd.DataFrame(rows).set_index("pp")

    # ---- labs: CTCAE v4.03 worst post-baseline grade per patient and term
    ref = pd.read_csv(SEEDS / "lab_reference_ranges.csv", dtype={"sex": str}).fillna({"sex": ""})
    sex = pts.set_index("patient_id").sex
    graded = labs[labs.analyte.isin(TERMS)].copy()
    graded["sex"] = graded.patient_id.map(sex)
    default = {(r.analyte, r.sex): (r.lln, r.uln) for r in ref.itertuples()}
    dflt = [default.get((a, s)) or default[(a, "")] for a, s in zip(graded.analyte, graded.sex)]
    graded["lln_eff"] = graded.lln.fillna(pd.Series([d[0] for d in dflt], index=graded.index))
    graded["uln_eff"] = graded.uln.fillna(pd.Series([d[1] for d in dflt], index=graded.index))
    graded["first"] = graded.patient_id.map(first)
    base_rows = graded[(graded.sample_date <= graded["first"])
                       & (graded.sample_date >= graded["first"] - pd.Timedelta(days=60))]
    base_rows = base_rows.sort_values("sample_date").groupby(["patient_id", "analyte"]).tail(1)
    baseline = base_rows.set_index(["patient_id", "analyte"]).value
    graded["is_baseline"] = graded.index.isin(base_rows.index)
    graded["base"] = [baseline.get((p, a)) for p, a in zip(graded.patient_id, graded.analyte)]
    graded["grade"] = [ctcae_grade(a, v, lo, hi, b if (a == "creatinine" and not ib) else None)
                       for a, v, lo, hi, b, ib in zip(graded.analyte, graded.value, graded.lln_eff, graded.uln_eff,
                                                      graded.base, graded.is_baseline)]
    # every row: same grade with the default range as with its own
    graded["grade_default"] = [ctcae_grade(a, v, *(default.get((a, s)) or default[(a, "")]),
                                           b if (a == "creatinine" and not ib) else None)
                               for a, v, s, b, ib in zip(graded.analyte, graded.value, graded.sex, graded.base,
                                                         graded.is_baseline)]
    expect((graded.grade == graded.grade_default).all(), "some lab row grades differently with the default range")
    close = [edge_distance(a, v, lo, hi, None if ib else b) < MARGINS[a] - 1e-9
             for a, v, lo, hi, b, ib in zip(graded.analyte, graded.value, graded.lln_eff, graded.uln_eff,
                                            graded.base, graded.is_baseline) if a in MARGINS]
    expect(not any(close), f"{sum(close)} lab values within the safety margin of a CTCAE band edge")
    expect((graded[graded.is_baseline].grade == 0).all(), "baseline lab not grade 0")
    expect(graded.groupby("patient_id").is_baseline.sum().eq(6).all(), "each patient has 6 baseline analytes")
    post = graded[~graded.is_baseline & (graded.sample_date > graded["first"])]
    expect(len(post) + graded.is_baseline.sum() == len(graded), "lab rows neither baseline nor post-baseline")
    worst = post.groupby(["patient_id", "analyte"]).grade.max().unstack(fill_value=0)
    counts = {(TERMS[a], g): int((worst[a] == g).sum()) for a in worst for g in range(1, 5) if (worst[a] == g).any()}
    print("\nWorst post-baseline CTCAE v4.03 grade, patients per term and grade:")
    for (term, g), n in sorted(counts.items()):
        print(f"  {term:40s} grade {g}: {n}")
    expect(counts == TABLE2, f"Table 2 mismatch: {counts}")
    empty = labs[labs.analyte != "chromogranin_a"].lln.isna().mean()
    print(f"lab rows without lln/uln (defaults apply): {empty:.1%}")
    expect(0.05 <= empty <= 0.15, "share of rows without lln/uln not ~10%")
    # sampling rhythm
    for p, g in labs.groupby("patient_id"):
        d = np.sort(g.sample_date.unique())
        steps = np.diff(d).astype("timedelta64[D]").astype(int)
        expect(((steps >= 28) & (steps <= 31)).all(), f"{p}: lab sampling not monthly")
        lead = (first[p] - pd.Timestamp(d[0])).days
        tail = (pd.Timestamp(d[-1]) - last[p]).days
        expect(1 <= lead <= 14 and 60 <= tail <= 185, f"{p}: lab window {lead} d before / {tail} d after")

    # ---- cohort figures
    print("\nPer patient:")
    print(summary.to_string())
    print(f"\nmedian age {summary.age.median()}, range {summary.age.min()}-{summary.age.max()}; "
          f"sex {summary.sex.value_counts().to_dict()}")
    print(f"cycles median {summary.n_cycles.median()} (range {summary.n_cycles.min()}-{summary.n_cycles.max()}); "
          f"cumulative activity median {summary.gbq.median()} GBq "
          f"(range {summary.gbq.min()}-{summary.gbq.max()})")
    pre_post = {k: float(np.median([int(x.split('/')[i]) for x in summary[col]]))
                for col in ("ecog", "kps") for i, k in enumerate((f"{col}_pre", f"{col}_post"))}
    print(f"medians {pre_post}; BOR {summary.bor.value_counts().to_dict()}")
    expect(pre_post == {"ecog_pre": 1.5, "ecog_post": 1.0, "kps_pre": 75.0, "kps_post": 80.0}, "ECOG/KPS medians")
    deaths = summary[summary.dead == 1]
    print("deaths: " + "; ".join(f"patient {pp}: {r.os_days} d = {r.os_months} months" for pp, r in deaths.iterrows()))
    expect(len(deaths) == 3, "number of deaths")
    kmf = KaplanMeierFitter().fit(summary.os_days / DAYS_PER_MONTH, summary.dead)
    median = kmf.median_survival_time_
    table = kmf.event_table[kmf.event_table.observed > 0]
    print("KM at death times:\n" + table.assign(survival=kmf.survival_function_.loc[table.index].iloc[:, 0])
          [["at_risk", "observed", "survival"]].to_string())
    print(f"Kaplan-Meier median OS (lifelines): {median:.3f} months")
    expect(abs(median - 23) <= 0.05, f"KM median {median} != 23")

    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print("\nOK: the demo export reproduces Table 1, Table 2 and the survival figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
