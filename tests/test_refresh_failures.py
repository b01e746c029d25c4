"""Every way a refresh fails ends with one line, ``prrt refresh: FAILED: <step>: <what went
wrong>: <what to do>``, a non-zero exit, no traceback, and the published warehouse as it was.

The disk cases are real: a tmpfs of a few megabytes (full disk) and a tmpfs remounted read-only,
each mounted in a user and mount namespace of the test's own (``unshare``), so no privilege is
needed and nothing outside the test sees them.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from prrt.refresh_lock import LOCK_SUFFIX

from .conftest import DEMO_EXPORT, PRRT, digest, run_refresh

AGAIN = "run `prrt refresh` again"


@pytest.fixture
def export(tmp_path) -> Path:
    copy = tmp_path / "export"
    shutil.copytree(DEMO_EXPORT, copy)
    return copy


def builds_left(names) -> list[str]:
    """Build files (and their WAL) among a .builds folder's names; the lock file stays by design."""
    return [name for name in names if ".duckdb" in name and not name.endswith(LOCK_SUFFIX)]


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.rstrip("\n").rsplit("\n", 1)[-1]


def assert_failed(result: subprocess.CompletedProcess, step: str, *fragments: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    line = last_line(result)
    assert line.startswith(f"prrt refresh: FAILED: {step}: "), result.stderr
    for fragment in fragments:
        assert fragment in line
    assert line.endswith((AGAIN, "(--raw or PRRT_RAW_DIR)")), line
    assert "↻" not in result.stdout, "a failure a retry cannot mend was retried"
    return line


def _blank_patients(export: Path) -> None:
    (export / "patients.csv").write_bytes(b"")


def _header_only_patients(export: Path) -> None:
    path = export / "patients.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")


def _cp1252_lab(export: Path) -> None:
    path = export / "labs.csv"
    lines = path.read_bytes().split(b"\n")
    lines[39] = lines[39] + b"\xe9"  # line 40: an e-acute as cp1252 writes it
    path.write_bytes(b"\n".join(lines))


def _every_sex_invalid(export: Path) -> None:
    path = export / "patients.csv"
    header, *rows = path.read_text().splitlines()
    sex = header.split(",").index("sex")
    rows = [",".join("X" if i == sex else v for i, v in enumerate(row.split(","))) for row in rows]
    path.write_text("\n".join([header, *rows]) + "\n")


@pytest.mark.parametrize(
    ("damage", "step", "fragments"),
    [
        (lambda e: (e / "labs.csv").unlink(), "ingest_raw_exports",
         ("labs.csv: file missing from export folder", "correct the export file")),
        (_blank_patients, "ingest_raw_exports", ("patients.csv: line 1: no header row",)),
        (_header_only_patients, "ingest_raw_exports", ("patients.csv: no data rows (only a header)",)),
        (_cp1252_lab, "ingest_raw_exports", ("labs.csv: line 40: not UTF-8", "PRRT_EXPORT_ENCODING")),
        (_every_sex_invalid, "check marts/dim_patient:not_empty",
         ("marts.dim_patient has no rows: all 16 rows of patients.csv were rejected; most often field sex: "  # noqa: ISC004
          "not one of: M, F (16 rows, first on line 2)", "correct the export as the check says")),
    ],
    ids=["missing file", "empty file", "header only", "bad encoding", "every patient rejected"],
)
def test_export_failure_ends_with_one_line(published, export, damage, step, fragments):
    damage(export)
    before = digest(published)
    result = run_refresh(export, published)
    assert_failed(result, step, *fragments)
    assert digest(published) == before
    assert not builds_left(p.name for p in published.parent.glob(".builds/*")), "the failed build was left behind"


def test_missing_export_folder(published, tmp_path):
    result = run_refresh(tmp_path / "nowhere", published)
    assert_failed(result, "export folder", f"{tmp_path / 'nowhere'} does not exist")


# --- real file systems: a full disk and a read-only one ----------------------------------------

def _namespaces_available() -> bool:
    try:
        return subprocess.run(["unshare", "--map-root-user", "--mount", "true"], capture_output=True,
                              timeout=30, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


needs_namespaces = pytest.mark.skipif(
    not _namespaces_available(), reason="needs unprivileged user and mount namespaces (unshare -rm) to mount a tmpfs")


def refresh_on_tmpfs(mount: Path, published_copy: Path, export: Path, *, size_kb: int, leave_kb: int | None = None,
                     read_only: bool = False) -> tuple[subprocess.CompletedProcess, str, list[str]]:
    """Mount a tmpfs of ``size_kb`` at ``mount`` (own namespace), put the published warehouse in
    it, fill it to ``leave_kb`` free or remount it read-only, and run `prrt refresh` there.
    Returns the refresh, the published file's SHA-256 afterwards, and what is left in .builds."""
    mount.mkdir()
    target = mount / "wh" / "warehouse.duckdb"
    q = shlex.quote
    report = mount.parent / f"{mount.name}.report"
    script = "\n".join([
        f"mount -t tmpfs -o size={size_kb}k tmpfs {q(str(mount))}",
        f"mkdir -m 700 {q(str(target.parent))} && cp -p {q(str(published_copy))} {q(str(target))}",
        (f"free=$(df -k --output=avail {q(str(mount))} | tail -1); "
         f"dd if=/dev/zero of={q(str(mount / 'fill'))} bs=1K count=$((free - {leave_kb})) status=none")
        if leave_kb is not None else "true",
        f"mount -o remount,ro {q(str(mount))}" if read_only else "true",
        (f"set +e; {q(PRRT)} refresh --raw {q(str(export))} --warehouse {q(str(target))} "
         "--allow-development-key --full; rc=$?"),
        f"{{ sha256sum {q(str(target))}; ls -A {q(str(target.parent / '.builds'))} 2>/dev/null; }} > {q(str(report))}",
        "exit $rc",
    ])
    env = {k: v for k, v in os.environ.items() if k not in ("PRRT_PSEUDONYM_KEY", "PRRT_PSEUDONYM_KEY_FILE")}
    result = subprocess.run(["unshare", "--map-root-user", "--mount", "bash", "-euc", script],
                            capture_output=True, text=True, env=env, timeout=600, check=False)
    digest_line, *left = report.read_text().splitlines()
    return result, digest_line.split(" ")[0], left


@needs_namespaces
@pytest.mark.parametrize(("leave_kb", "step"), [(40, "ingest_raw_exports"), (700, "prrt_dbt_models")],
                         ids=["during ingestion", "during dbt"])
def test_full_disk(published, export, tmp_path, leave_kb, step):
    before = digest(published)
    result, after, left = refresh_on_tmpfs(tmp_path / "disk", published, export, size_kb=16 * 1024,
                                           leave_kb=leave_kb)
    assert_failed(result, step, f"no space left on the disk that holds {tmp_path / 'disk' / 'wh'}", "free space")
    assert after == before
    assert not builds_left(left), left


@needs_namespaces
def test_read_only_warehouse_folder(published, export, tmp_path):
    before = digest(published)
    result, after, _ = refresh_on_tmpfs(tmp_path / "ro", published, export, size_kb=32 * 1024, read_only=True)
    assert_failed(result, "warehouse folder", f"the warehouse folder {tmp_path / 'ro' / 'wh'} is on a read-only "
                  "file system", "publish to a writable folder")
    assert after == before
