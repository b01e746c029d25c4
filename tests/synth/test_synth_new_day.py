"""prrt synth-new-day: a day's new rows for living patients of a clean synthetic export, and a
clear refusal of an export it cannot extend."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from prrt import synth
from prrt.synth_new_day import NewDayError, generate_new_day, main

DAY = date(2031, 1, 15)  # after every date of the export


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    synth.generate_export(400, out, seed=5)
    return out


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_new_rows_are_dated_the_day_for_living_patients_only(export, tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(export, folder)
    rows = generate_new_day(folder, DAY, share=0.2, seed=3)
    assert set(rows) == {f"labs_{DAY}.csv", f"cycles_{DAY}.csv", f"tumour_assessments_{DAY}.csv"}

    follow_up = _read(folder / "follow_up.csv")
    alive = set(follow_up.loc[follow_up["vital_status"] == "alive", "patient_id"])
    labs = _read(folder / f"labs_{DAY}.csv")
    assert len(labs) == rows[f"labs_{DAY}.csv"] > 0
    assert set(labs["patient_id"]) <= alive
    assert set(labs["sample_date"]) == {DAY.isoformat()}
    # one panel per chosen patient: each analyte the patient already had, once
    base = _read(folder / "labs.csv")
    chosen = set(labs["patient_id"])
    expected = base[base["patient_id"].isin(chosen)].groupby("patient_id")["analyte"].nunique()
    assert labs.groupby("patient_id")["analyte"].size().sort_index().tolist() == expected.sort_index().tolist()

    cycles = _read(folder / f"cycles_{DAY}.csv")
    assert set(cycles["patient_id"]) <= chosen
    previous = _read(folder / "cycles.csv").astype({"cycle_number": int}).groupby("patient_id")["cycle_number"].max()
    assert (cycles["cycle_number"].astype(int).to_numpy() == previous[cycles["patient_id"]].to_numpy() + 1).all()
    assert cycles["cycle_number"].astype(int).max() <= 7

    assessments = _read(folder / f"tumour_assessments_{DAY}.csv")
    assert set(assessments["patient_id"]) <= chosen
    assert set(assessments["assessment_date"]) == {DAY.isoformat()}


def test_same_seed_same_day(export, tmp_path):
    written = []
    for run in ("a", "b"):
        folder = tmp_path / run
        shutil.copytree(export, folder)
        generate_new_day(folder, DAY, share=0.1, seed=9)
        written.append({p.name: p.read_bytes() for p in folder.glob(f"*_{DAY}.csv")})
    assert written[0] == written[1] and len(written[0]) == 3


def test_messy_export_is_refused_without_writing_anything(tmp_path, capsys):
    folder = tmp_path / "messy"
    synth.generate_export(100, folder, seed=5, messy=True)
    before = sorted(p.name for p in folder.iterdir())
    assert main([str(folder), "--day", DAY.isoformat()]) == 2
    assert "written with `prrt synth --messy`" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == before


def test_unreadable_base_file_is_named_and_leaves_no_partial_day(export, tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(export, folder)
    cycles = pd.read_csv(folder / "cycles.csv", dtype=str, keep_default_na=False)
    cycles["cycle_number"] = "cycle " + cycles["cycle_number"]  # as a hospital system might write it
    cycles.to_csv(folder / "cycles.csv", index=False)
    with pytest.raises(NewDayError, match=r"cycles\.csv: not readable as a clean `prrt synth` export"):
        generate_new_day(folder, DAY, share=1.0)
    assert list(folder.glob(f"*_{DAY}.csv")) == []
