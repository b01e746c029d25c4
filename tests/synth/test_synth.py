"""prrt.synth: deterministic, contract-shaped, clinically plausible exports; messy mode
writes the tolerated variations with the same data underneath and records exactly
which bad rows it injected."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prrt import synth

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "dbt" / "seeds"
N = 200
TODAY = date.today().isoformat()


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("clean")
    return out, synth.generate_export(N, out, seed=11)


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> tuple[Path, dict[str, int], dict]:
    out = tmp_path_factory.mktemp("messy")
    counts = synth.generate_export(N, out, seed=11, messy=True)
    return out, counts, json.loads((out / synth.EXPECTED_REJECTIONS_FILE).read_text())


def _frames(folder: Path) -> dict[str, pd.DataFrame]:
    return {f: pd.read_csv(folder / f, dtype=str, keep_default_na=False) for f in synth.FILES}


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files(clean, tmp_path):
    out, _ = clean
    synth.generate_export(N, tmp_path, seed=11)
    assert _digest(tmp_path) == _digest(out)


def test_messy_mode_is_deterministic_too(messy, tmp_path):
    out, _, _ = messy
    synth.generate_export(N, tmp_path, seed=11, messy=True)
    assert _digest(tmp_path) == _digest(out)


def test_different_seed_gives_different_files(clean, tmp_path):
    out, _ = clean
    synth.generate_export(N, tmp_path, seed=12)
    before, after = _digest(out), _digest(tmp_path)
    assert all(before[f] != after[f] for f in synth.FILES)


def test_several_chunks_number_patients_per_site_without_gaps(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "CHUNK_PATIENTS", 64)
    counts = synth.generate_export(N, tmp_path, seed=3, sites=4)
    ids = pd.read_csv(tmp_path / "patients.csv", dtype=str).patient_id
    assert counts["patients.csv"] == N and ids.is_unique
    site, number = ids.str[:3], ids.str[4:].astype(int)
    assert set(site) == {"S01", "S02", "S03", "S04"}
    for _, nums in number.groupby(site):
        assert sorted(nums) == list(range(1, len(nums) + 1))


# --------------------------------------------------------------------------- contract shape


def test_files_have_the_contract_columns_and_the_returned_row_counts(clean):
    out, counts = clean
    assert set(counts) == set(synth.FILES)
    for f in synth.FILES:
        raw = (out / f).read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" not in raw
        lines = raw.decode("utf-8").splitlines()
        assert tuple(lines[0].split(",")) == synth.COLUMNS[f]
        assert len(lines) - 1 == counts[f] > 0
    assert counts["patients.csv"] == counts["follow_up.csv"] == N
    assert not (out / synth.EXPECTED_REJECTIONS_FILE).exists()


def test_every_child_row_belongs_to_a_patient(clean):
    frames = _frames(clean[0])
    ids = set(frames["patients.csv"].patient_id)
    assert len(ids) == N
    for f in synth.FILES[1:]:
        assert set(frames[f].patient_id) <= ids, f
    assert set(frames["cycles.csv"].patient_id) == ids  # everyone was treated at least once


def test_patients_are_plausible(clean):
    frames = _frames(clean[0])
    p = frames["patients.csv"]
    first = pd.to_datetime(frames["cycles.csv"].groupby("patient_id").administration_date.min())
    birth = pd.to_datetime(p.set_index("patient_id").birth_date)
    age = (first - birth.reindex(first.index)).dt.days / 365.25
    assert age.between(25, 86).all()
    assert set(p.sex) == {"M", "F"} and 0.35 < (p.sex == "F").mean() < 0.65
    assert set(p.primary_site) <= set(synth.PRIMARY_SITES)
    assert set(p.tumour_grade) <= {"G1", "G2", "G3", ""}
    for col in ("prior_surgery", "prior_chemotherapy", "prior_radiotherapy", "hypertension", "diabetes"):
        assert set(p[col]) <= {"yes", "no", ""}
    pet = p.baseline_imaging == "ga68_dotatate_pet"
    assert set(p.baseline_imaging) <= set(synth.IMAGING)
    assert (p.krenning_score[pet] == "").all()
    assert set(p.krenning_score[~pet]) <= {"2", "3", "4"}
    ki67 = pd.to_numeric(p.ki67_percent, errors="coerce")
    assert ki67.dropna().between(0, 100).all()
    assert set(frames["metastases.csv"].site) <= set(synth.MET_SITES)
    assert not frames["metastases.csv"].duplicated().any()


def test_cycles_follow_the_protocol(clean):
    c = _frames(clean[0])["cycles.csv"]
    activity = c.activity.astype(float)
    assert activity.between(3.7, 7.4).all() and (c.activity_unit == "GBq").all()
    assert set(c.amino_acid_infusion) <= {"yes", "no"}
    c = c.assign(day=pd.to_datetime(c.administration_date), n=c.cycle_number.astype(int))
    per_patient = c.groupby("patient_id").n.agg(["min", "max", "count"])
    assert (per_patient["min"] == 1).all() and (per_patient["max"] == per_patient["count"]).all()
    assert per_patient["count"].between(1, 7).all()
    gaps = c.sort_values(["patient_id", "n"]).groupby("patient_id").day.diff().dropna().dt.days
    assert gaps.between(42, 56).all()
    assert c.day.dt.year.between(2015, 2026).all()
    assert c.day.min() < pd.Timestamp("2017-01-01") and c.day.max() > pd.Timestamp("2023-01-01")


def test_labs_are_within_the_seed_limits_and_start_with_a_baseline(clean):
    frames = _frames(clean[0])
    labs = frames["labs.csv"]
    limits = pd.read_csv(SEEDS / "lab_analytes.csv").set_index("analyte")
    assert set(labs.analyte) == set(limits.index)
    value = labs.value.astype(float)
    assert (labs.unit == labs.analyte.map(limits.canonical_unit)).all()
    assert value.between(labs.analyte.map(limits.plausible_min), labs.analyte.map(limits.plausible_max)).all()
    with_range = labs[labs.lln != ""]
    assert 0 < len(with_range) < len(labs)  # some centres print reference ranges, some do not
    assert (with_range.lln.astype(float) <= with_range.uln.astype(float)).all()

    first = pd.to_datetime(frames["cycles.csv"].groupby("patient_id").administration_date.min())
    last = pd.to_datetime(frames["cycles.csv"].groupby("patient_id").administration_date.max())
    day = pd.to_datetime(labs.sample_date)
    since_first = (day - labs.patient_id.map(first)).dt.days
    baseline = since_first.groupby(labs.patient_id).min()
    assert baseline.between(-14, -1).all()  # a baseline 1-14 days before cycle 1 for everyone
    assert ((day - labs.patient_id.map(last)).dt.days <= 210).all()
    samples = labs.drop_duplicates(["patient_id", "sample_date"])
    gaps = pd.to_datetime(samples.sample_date).groupby(samples.patient_id).diff().dropna().dt.days
    assert gaps.between(26, 35).all()  # monthly
    hb = labs[labs.analyte == "hemoglobin"].value.astype(float)
    assert 8 < hb.median() < 16


def test_haematological_toxicity_is_mostly_mild(tmp_path):
    synth.generate_export(2000, tmp_path, seed=5)
    labs = pd.read_csv(tmp_path / "labs.csv")
    worst = labs.groupby(["analyte", "patient_id"]).value.min().unstack(0)
    platelets_g3 = (worst.platelets < 50).mean()
    neutrophils_g3 = (worst.neutrophils < 1.0).mean()
    anaemia_g3 = (worst.hemoglobin < 8.0).mean()
    assert platelets_g3 < 0.05 and neutrophils_g3 < 0.05 and anaemia_g3 < 0.06
    assert (worst.platelets < 150).mean() > 0.1  # but there is some toxicity to grade


def test_assessments_and_follow_up_are_plausible(clean):
    frames = _frames(clean[0])
    first = pd.to_datetime(frames["cycles.csv"].groupby("patient_id").administration_date.min())
    last = pd.to_datetime(frames["cycles.csv"].groupby("patient_id").administration_date.max())
    birth = pd.to_datetime(frames["patients.csv"].set_index("patient_id").birth_date)

    ps = frames["performance_status.csv"]
    ecog, kps = pd.to_numeric(ps.ecog, errors="coerce"), pd.to_numeric(ps.kps, errors="coerce")
    assert ecog.dropna().between(0, 5).all() and kps.dropna().between(0, 100).all()
    assert (kps.dropna() % 10 == 0).all() and not (ecog.isna() & kps.isna()).any()
    ps_day = pd.to_datetime(ps.assessment_date)
    assert ((ps_day - ps.patient_id.map(first)).dt.days.groupby(ps.patient_id).min() <= 0).all()
    # the warehouse's "post" is the first assessment >= 90 days after the last cycle (contract v2)
    after = (ps_day - ps.patient_id.map(last)).dt.days >= 90
    assert after.groupby(ps.patient_id).any().mean() > 0.5  # most have a post-treatment ECOG/KPS

    ta = frames["tumour_assessments.csv"]
    assert set(ta.modality) <= {"ct", "mri"} and set(ta.recist_response) <= set(synth.RESPONSES)
    since = (pd.to_datetime(ta.assessment_date) - ta.patient_id.map(first)).dt.days
    baseline = ta[since < 0]  # one baseline scan per patient, 1-4 weeks before the first cycle, NE with a sum
    assert baseline.patient_id.is_unique and set(baseline.patient_id) == set(first.index)
    assert since[since < 0].between(-28, -7).all() and (baseline.recist_response == "NE").all()
    assert (pd.to_numeric(baseline.sum_of_diameters_mm) > 0).all()
    assert since[since >= 0].min() >= 42  # then every 6-9 weeks on therapy

    fu = frames["follow_up.csv"].set_index("patient_id")
    dead = fu.vital_status == "dead"
    assert set(fu.vital_status) == {"alive", "dead"}
    assert (fu.death_date[~dead] == "").all() and (fu.death_date[dead] == fu.last_contact_date[dead]).all()
    death = pd.to_datetime(fu.death_date[dead])
    assert (death > first.reindex(death.index)).all()
    assert (pd.to_datetime(fu.last_contact_date) <= pd.Timestamp(min(synth.DEFAULT_CUTOFF, date.today()))).all()

    for f, col in [("cycles.csv", "administration_date"), ("labs.csv", "sample_date"),
                   ("performance_status.csv", "assessment_date"), ("tumour_assessments.csv", "assessment_date")]:
        frame = frames[f]
        day = pd.to_datetime(frame[col])
        assert (frame[col] <= TODAY).all() and (day > frame.patient_id.map(birth)).all(), f
        end = frame.patient_id.map(pd.to_datetime(fu.last_contact_date))
        assert (day <= end).all(), f  # nothing after death or last contact


def _best_response(frames) -> pd.Series:
    first = pd.to_datetime(frames["cycles.csv"].groupby("patient_id").administration_date.min())
    ta = frames["tumour_assessments.csv"]
    since = (pd.to_datetime(ta.assessment_date) - ta.patient_id.map(first)).dt.days
    rank = ta.recist_response.map({"CR": 0, "PR": 1, "SD": 2, "PD": 3})
    rank = rank[(ta.recist_response != "SD") | (since >= 42)]
    return rank.groupby(ta.patient_id).min().map(dict(enumerate(["CR", "PR", "SD", "PD"])))


def test_best_response_and_survival_look_like_prrt(tmp_path):
    synth.generate_export(3000, tmp_path, seed=2)
    frames = _frames(tmp_path)
    share = _best_response(frames).value_counts(normalize=True)
    for response, expected in {"CR": 0.10, "PR": 0.40, "SD": 0.35, "PD": 0.15}.items():
        assert abs(share[response] - expected) < 0.04, share

    fu = frames["follow_up.csv"].set_index("patient_id")
    first = pd.to_datetime(frames["cycles.csv"].groupby("patient_id").administration_date.min())
    end = pd.to_datetime(fu.death_date.replace("", None).fillna(fu.last_contact_date))
    months = ((end - first.reindex(fu.index)).dt.days / 30.4375).to_numpy()
    event = (fu.vital_status == "dead").to_numpy()
    # Kaplan-Meier median without lifelines: product-limit over sorted times
    order = np.lexsort((~event, months))
    months, event = months[order], event[order]
    at_risk = len(months) - np.arange(len(months))
    survival = np.cumprod(1 - event / at_risk)
    median = months[np.argmax(survival <= 0.5)]
    assert 28 <= median <= 44, median
    assert 0.2 < event.mean() < 0.9


# --------------------------------------------------------------------------- messy mode


def _unit_table() -> dict[tuple[str, str], float]:
    seed = pd.read_csv(SEEDS / "unit_conversions.csv")
    return {(q, u): m for q, u, m in zip(seed.quantity, seed.unit, seed.multiplier)}


def _norm_unit(unit: str) -> str:
    return unit.strip().lower().replace(" ", "").replace("µ", "u")


def test_unit_spellings_match_the_seed():
    table = _unit_table()
    for quantity, options in synth.UNIT_OPTIONS.items():
        for unit, mult, _ in options:
            assert table[(quantity, _norm_unit(unit))] == pytest.approx(mult), (quantity, unit)
    for unit in synth.UNKNOWN_LAB_UNITS:
        assert all((a, _norm_unit(unit)) not in table for a in synth.ANALYTES)
    for unit in synth.UNKNOWN_ACTIVITY_UNITS:
        assert ("activity", _norm_unit(unit)) not in table


def _read(path: Path, fmt: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of a messy file as a tolerant reader sees them: header normalised."""
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == fmt["bom"]
    assert (b"\r\n" in raw) == fmt["crlf"]
    text = raw.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=fmt["delimiter"]))
    header = ["_".join(h.strip().lower().split()) for h in rows[0]]
    return header, rows[1:]


def _canonical(f: str, header: list[str], row: list[str], fmt: dict, units) -> tuple:
    """One messy row in canonical form (ISO dates, '.' decimals, canonical units, booleans)."""
    rec = dict(zip(header, row))

    def num(x: str) -> float | None:
        return float(x.replace(",", ".")) if x else None

    for col in rec:
        if col.endswith("_date") and rec[col]:
            rec[col] = (datetime.strptime(rec[col], "%d/%m/%Y").date().isoformat()
                        if fmt["date_format"] == "dmy" else rec[col])
    if f == "patients.csv":
        for col in ("prior_surgery", "prior_chemotherapy", "prior_radiotherapy", "hypertension", "diabetes"):
            rec[col] = {"yes": "yes", "y": "yes", "1": "yes", "+": "yes",
                        "no": "no", "n": "no", "0": "no", "-": "no", "": ""}[rec[col]]
        rec["ki67_percent"], rec["suvmax"] = num(rec["ki67_percent"]), num(rec["suvmax"])
    if f == "cycles.csv":
        mult = units[("activity", _norm_unit(rec["activity_unit"]))]
        rec["activity"], rec["activity_unit"] = num(rec["activity"]) * mult, "GBq"
    if f == "labs.csv":
        mult = units[(rec["analyte"], _norm_unit(rec["unit"]))]
        for col in ("value", "lln", "uln"):
            rec[col] = None if rec[col] == "" else num(rec[col]) * mult
        rec["unit"] = None
    if f == "tumour_assessments.csv":
        rec["sum_of_diameters_mm"] = num(rec["sum_of_diameters_mm"])
    return tuple(rec[c] for c in synth.COLUMNS[f])


def test_messy_formats_cover_every_tolerated_variation(messy):
    out, counts, record = messy
    formats = record["formats"]
    for key in ("bom", "crlf", "decimal_comma"):
        flags = [formats[f][key] for f in synth.FILES]
        assert any(flags) and not all(flags), key
    assert {formats[f]["delimiter"] for f in synth.FILES} == {",", ";"}
    assert {formats[f]["date_format"] for f in synth.FILES} == {"iso", "dmy"}
    assert {"upper", "padded", "mixed"} <= {formats[f]["header_style"] for f in synth.FILES}
    units = record["site_units"]
    written = {u for site in units.values() for u in site.values()}
    assert {"mCi", "MBq", "g/L", "mmol/L", "mg/dL"} & written
    assert any(u.lower() in {"/mm3", "cells/mm3"} for u in written)
    for f in synth.FILES:
        header, rows = _read(out / f, formats[f])
        assert tuple(header) == synth.COLUMNS[f]
        assert len(rows) == counts[f] == record["files"][f]["rows_read"]
        raw_header = (out / f).read_bytes().decode("utf-8-sig").splitlines()[0]
        if formats[f]["header_style"] != "exact":
            assert raw_header.split(formats[f]["delimiter"]) != list(synth.COLUMNS[f])


def test_messy_record_lists_one_to_three_rows_of_each_kind_per_file(messy):
    _, counts, record = messy
    for f in synth.FILES:
        info = record["files"][f]
        kinds = {k for k, files in synth.KINDS.items() if f in files}
        assert set(info["by_kind"]) == kinds, f
        assert all(1 <= n <= 3 for n in info["by_kind"].values())
        assert info["rejected"] == len(info["rows"]) == sum(info["by_kind"].values())
        assert info["rows_accepted"] == counts[f] - info["rejected"]
        lines = [r["line"] for r in info["rows"]]
        assert len(set(lines)) == len(lines) and min(lines) >= 2 and max(lines) <= counts[f] + 1
    all_kinds = {r["kind"] for info in record["files"].values() for r in info["rows"]}
    assert all_kinds == set(synth.KINDS)


def test_messy_rows_are_the_clean_rows_plus_exactly_the_recorded_bad_rows(clean, messy):
    """Apart from the recorded lines, a messy file holds the clean file's rows, in order,
    with values converted back from the centre's units within their rounding."""
    clean_out, _ = clean
    out, _, record = messy
    units = _unit_table()
    clean_fmt = {"bom": False, "crlf": False, "delimiter": ",", "date_format": "iso"}
    for f in synth.FILES:
        fmt = record["formats"][f]
        bad = {r["line"] for r in record["files"][f]["rows"]}
        header, rows = _read(out / f, fmt)
        kept = [_canonical(f, header, row, fmt, units) for i, row in enumerate(rows) if i + 2 not in bad]
        c_header, c_rows = _read(clean_out / f, clean_fmt)
        expected = [_canonical(f, c_header, row, clean_fmt, units) for row in c_rows]
        assert len(kept) == len(expected), f
        for got, want in zip(kept, expected):
            for g, w in zip(got, want):
                if isinstance(w, float):
                    # one unit in the last reported digit: mmol/L Hb, mg/dL creatinine, mCi...
                    assert g == pytest.approx(w, rel=0.03, abs=0.01), (f, got, want)
                else:
                    assert g == w, (f, got, want)


def test_each_recorded_bad_row_has_the_recorded_defect(messy):
    out, _, record = messy
    units = _unit_table()
    formats = record["formats"]
    patients_header, patients = _read(out / "patients.csv", formats["patients.csv"])
    bad_patient_lines = {r["line"] for r in record["files"]["patients.csv"]["rows"]}
    known = {row[0] for i, row in enumerate(patients) if i + 2 not in bad_patient_lines}
    for f in synth.FILES:
        fmt = formats[f]
        header, rows = _read(out / f, fmt)
        lines = {i + 2: dict(zip(header, row)) for i, row in enumerate(rows)}
        raw_lines = {i + 2: row for i, row in enumerate(rows)}
        for r in record["files"][f]["rows"]:
            row, kind = lines[r["line"]], r["kind"]
            assert row["patient_id"] == r["patient_id"]
            if kind == "unknown_patient":
                assert row["patient_id"] not in known
            elif kind == "duplicate_row":
                assert raw_lines[r["line"]] in [raw_lines[i] for i in range(2, r["line"])]
            elif kind == "missing_required":
                assert row[r["field"]] == ""
            elif kind == "unparseable_date":
                assert row[r["field"]] in synth.BAD_DATES
            elif kind == "date_after_today":
                day = row[r["field"]]
                iso = datetime.strptime(day, "%d/%m/%Y").date().isoformat() if fmt["date_format"] == "dmy" else day
                assert iso > TODAY
            elif kind == "unknown_unit":
                assert row[r["field"]] in synth.UNKNOWN_LAB_UNITS + synth.UNKNOWN_ACTIVITY_UNITS
            elif kind == "hb_over_25":
                value = float(row["value"].replace(",", ".")) * units[("hemoglobin", _norm_unit(row["unit"]))]
                assert row["analyte"] == "hemoglobin" and value > 25
            elif kind == "activity_over_15_gbq":
                gbq = float(row["activity"].replace(",", ".")) * units[("activity", _norm_unit(row["activity_unit"]))]
                assert gbq > 15
            if f == "patients.csv" and kind != "duplicate_row":
                assert row["patient_id"][4] == "8"  # a new record number: no child rows depend on it


def test_cli_writes_an_export(tmp_path, capsys):
    assert synth.main(["--patients", "25", "--out", str(tmp_path), "--seed", "4", "--sites", "2", "--messy"]) == 0
    printed = capsys.readouterr().out
    assert "patients.csv" in printed and "25 patients" in printed
    assert (tmp_path / synth.EXPECTED_REJECTIONS_FILE).exists()
    assert {p.name for p in tmp_path.glob("*.csv")} == set(synth.FILES)


def test_messy_export_is_rejected_exactly_as_recorded_by_the_loader(messy):
    """The point of the record: the ingestion rejects exactly the injected lines."""
    ingest = pytest.importorskip("prrt.ingest")
    duckdb = pytest.importorskip("duckdb")
    out, counts, record = messy
    con = duckdb.connect()
    summaries = {s.source_file: s for s in ingest.load_export(con, out, b"test-key")}
    for f in synth.FILES:
        expected = record["files"][f]
        assert summaries[f].rows_read == counts[f]
        assert summaries[f].rows_rejected == expected["rejected"], f
        lines = [r[0] for r in con.execute(
            "SELECT DISTINCT source_row FROM audit.rejected_rows WHERE source_file = ? ORDER BY 1", [f]).fetchall()]
        assert lines == [r["line"] for r in expected["rows"]], f
