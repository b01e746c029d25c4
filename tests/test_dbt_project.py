"""The dbt project itself: current syntax (no deprecations) and documentation that builds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from prrt.config import DBT_PROJECT_DIR

DBT = str(Path(sys.executable).with_name("dbt"))


def dbt(*args: str, build_db: Path | None = None, target: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    if build_db is not None:
        env["PRRT_BUILD_DB"] = str(build_db)
    if target is not None:
        env["DBT_TARGET_PATH"] = str(target)
    return subprocess.run(
        [DBT, *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        capture_output=True, text=True, env=env, timeout=600,
    )


def test_parse_shows_no_deprecations(tmp_path):
    result = dbt("parse", "--show-all-deprecations", target=tmp_path / "target")
    assert result.returncode == 0, result.stdout + result.stderr
    output = (result.stdout + result.stderr).replace(str(tmp_path), "<tmp>").lower()
    assert "deprecat" not in output and "[warning]" not in output, output


def test_docs_generate_describes_every_mart_column(demo_warehouse, tmp_path):
    build = tmp_path / "docs.duckdb"
    shutil.copy(demo_warehouse, build)  # docs generate opens the database read-write
    result = dbt("docs", "generate", build_db=build, target=tmp_path / "target")
    assert result.returncode == 0, result.stdout + result.stderr
    import json

    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    marts = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["schema"] == "marts"]
    contract = {"dim_patient", "fct_treatment_cycle", "fct_lab_result", "fct_toxicity", "fct_tumour_assessment",
                "fct_survival"}
    assert contract <= {n["name"] for n in marts}
    for node in marts:
        columns = catalog["nodes"][node["unique_id"]]["columns"]
        undocumented = [c for c in columns if not node["columns"].get(c, {}).get("description")]
        assert undocumented == [], f"{node['name']}: columns without description: {undocumented}"


def test_unit_tests_pin_the_clinical_rules(demo_warehouse, tmp_path):
    """dbt's unit tests (CTCAE v4.03 band edges, baselines, RECIST 1.1 best response, ...).
    The nightly build leaves them out, as dbt recommends; here they must all pass."""
    build = tmp_path / "unit.duckdb"
    shutil.copy(demo_warehouse, build)  # unit tests read the upstream relations' column types
    result = dbt("test", "--select", "test_type:unit", build_db=build, target=tmp_path / "target")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = [line for line in result.stdout.splitlines() if " PASS " in line]
    assert len(passed) >= 25, result.stdout[-3000:]


def test_full_build_in_patient_batches_equals_one_statement(demo_warehouse, tmp_path):
    """fct_lab_result built in patient batches (macros/patient_batches.sql; here 50 lab rows per
    batch, so dozens of batches) holds exactly the rows of the one-statement build."""
    import duckdb

    build = tmp_path / "batched.duckdb"
    shutil.copy(demo_warehouse, build)
    logs = tmp_path / "logs"
    result = dbt("run", "--select", "fct_lab_result", "--full-refresh", "--vars", '{"patient_batch_rows": 50}',
                 "--log-path", str(logs), "--log-level-file", "debug", build_db=build, target=tmp_path / "target")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    with duckdb.connect(str(build), read_only=True) as con:
        n_labs = con.execute("SELECT count(*) FROM ingest.labs").fetchone()[0]
        batches = min(256, 1 << max(0, (n_labs - 1) // 50).bit_length())
        executed = (logs / "dbt.log").read_text()
        assert f"/* patient batch {batches} of {batches} */" in executed and batches > 16
        con.execute(f"ATTACH '{demo_warehouse}' AS demo (READ_ONLY)")
        one_statement = "demo.marts.fct_lab_result"
        assert con.execute(f"SELECT count(*) FROM {one_statement}").fetchone()[0] > 0
        for left, right in (("marts.fct_lab_result", one_statement), (one_statement, "marts.fct_lab_result")):
            assert con.execute(f"SELECT count(*) FROM (FROM {left} EXCEPT ALL FROM {right})").fetchone()[0] == 0


def test_uniqueness_tests_report_every_repeated_value(demo_warehouse, tmp_path):
    """The project's `unique` (macros/test_unique.sql, sorted neighbours) and
    `unique_combination_of_columns` (hashes first) report what dbt's group-by forms report:
    each repeated value once, with how many rows hold it."""
    import json

    import duckdb

    build = tmp_path / "duplicates.duckdb"
    shutil.copy(demo_warehouse, build)
    with duckdb.connect(str(build)) as con:
        # the first patient and lab result 3 times over, the second twice
        patients = [r[0] for r in con.execute(
            "SELECT patient_key FROM marts.dim_patient ORDER BY patient_key LIMIT 2").fetchall()]
        labs = con.execute("SELECT patient_key, sample_date, analyte FROM marts.fct_lab_result"
                           " ORDER BY ALL LIMIT 2").fetchall()
        for i in (0, 0, 1):
            con.execute("INSERT INTO marts.dim_patient SELECT * FROM marts.dim_patient"
                        " WHERE patient_key = ? LIMIT 1", [patients[i]])
            con.execute("INSERT INTO marts.fct_lab_result SELECT * FROM marts.fct_lab_result"
                        " WHERE (patient_key, sample_date, analyte) = (?, ?, ?) LIMIT 1", list(labs[i]))
    target = tmp_path / "target"
    result = dbt("test", "--select", "dim_patient,test_name:unique fct_lab_result,test_name:unique_combination_of_columns",
                 "--store-failures", build_db=build, target=target)
    assert result.returncode == 1, result.stdout[-3000:]
    results = {r["unique_id"].split(".")[2]: r for r in json.loads((target / "run_results.json").read_text())["results"]}
    # the project's implementations ran, not dbt's group-by ones (which report the same rows)
    compiled = {path.stem: path.read_text() for path in (target / "compiled").rglob("*.sql")}
    assert "lag(patient_key) over (order by patient_key)" in compiled["unique_dim_patient_patient_key"]
    assert sum("hash(patient_key, sample_date, analyte)" in sql for sql in compiled.values()) == 1
    assert {name: (r["status"], r["failures"]) for name, r in results.items()} == {
        "unique_dim_patient_patient_key": ("fail", 2),
        # a warning by the project's choice (fct_lab_result.yml)
        "unique_combination_of_columns_fct_lab_result_patient_key__sample_date__analyte": ("warn", 2),
    }
    with duckdb.connect(str(build), read_only=True) as con:
        stored = {r[0]: r[1] for r in con.execute(
            "SELECT table_name, table_schema FROM information_schema.tables WHERE table_schema LIKE '%dbt_test__audit'")
            .fetchall()}
        counts = {name: sorted(r[0] for r in con.execute(f'SELECT {"n_records" if name.startswith("unique_dim") else "n_rows"}'
                                                         f' FROM "{schema}"."{name}"').fetchall())
                  for name, schema in stored.items()}
    assert sorted(counts.values()) == [[2, 3], [2, 3]], counts
