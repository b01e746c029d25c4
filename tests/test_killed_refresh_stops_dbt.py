"""A killed `prrt refresh` takes its dbt processes with it: none carries on against the
build file, and the published warehouse is left as it was."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import PRRT
from .test_atomic_publish import digest, patient_count


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every live process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if state not in "ZX":  # a zombie has ended, whoever reaps it
            found[int(entry)] = (int(ppid), state, cmdline)
    return found


def _dbt_descendants(root: int) -> dict[int, str]:
    processes = _processes()
    family, frontier = {}, {root}
    while frontier:
        frontier = {pid for pid, (ppid, _, _) in processes.items() if ppid in frontier}
        family.update({pid: processes[pid][2] for pid in frontier})
    return {pid: cmd for pid, cmd in family.items() if "dbt" in cmd}


def _using(build_dir: Path) -> set[int]:
    """Processes whose environment points dbt at a build file under ``build_dir``."""
    pids = set()
    for pid in _processes():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"PRRT_BUILD_DB={build_dir}".encode() in environ:
            pids.add(pid)
    return pids


@pytest.fixture(scope="module")
def synthetic_export(tmp_path_factory) -> Path:
    export = tmp_path_factory.mktemp("synthetic") / "export"
    subprocess.run([PRRT, "synth", "--patients", "2000", "--out", str(export)], check=True, capture_output=True)
    return export


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_refresh_leaves_no_dbt_running(signum, synthetic_export, demo_warehouse, tmp_path):
    published = tmp_path / "published" / "warehouse.duckdb"
    published.parent.mkdir()
    shutil.copy(demo_warehouse, published)  # last night's warehouse: another export, so a full refresh
    before = digest(published)
    builds = published.parent / ".builds"

    env = dict(os.environ)
    env.pop("PRRT_PSEUDONYM_KEY", None)
    refresh = subprocess.Popen(
        [PRRT, "refresh", "--raw", str(synthetic_export), "--warehouse", str(published), "--allow-development-key"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
        start_new_session=True,  # only for the clean-up below; the test signals the refresh's pid alone
    )
    try:
        deadline = time.monotonic() + 300
        while not any(" build " in cmd for cmd in _dbt_descendants(refresh.pid).values()):
            assert refresh.poll() is None, "refresh ended before dbt ran:\n" + refresh.stdout.read().decode()
            assert time.monotonic() < deadline, "dbt build never started"
            time.sleep(0.05)
        time.sleep(0.5)  # dbt under way (seeds, models)
        dbt = _dbt_descendants(refresh.pid)

        # a scheduler's timeout: the refresh's own pid, not its process group
        os.kill(refresh.pid, signum)
        output = refresh.communicate(timeout=60)[0].decode()
        assert refresh.returncode != 0

        deadline = time.monotonic() + 5
        while (alive := (set(dbt) | _using(builds)) & set(_processes())) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive, f"still running after the refresh ended: {[dbt.get(p, p) for p in alive]}\n{output}"
    finally:
        try:
            os.killpg(refresh.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        refresh.wait()

    assert digest(published) == before
    assert patient_count(published) == 16


def test_dagster_dbt_starts_dbt_with_our_popen():
    """The hook dagster_project.resources puts into dagster-dbt (pinned 0.29) is in place, and
    with no dbt process started ahead it starts dbt as a child that dies with its parent."""
    from dagster_dbt.core import dbt_cli_invocation

    from dagster_project import resources
    from prrt import child_process

    assert dbt_cli_invocation.subprocess.Popen is resources._SubprocessForDbt.Popen
    assert dbt_cli_invocation.subprocess.PIPE == subprocess.PIPE
    process = dbt_cli_invocation.subprocess.Popen([sys.executable, "-c", "print('ok')"], stdout=subprocess.PIPE)
    assert isinstance(process, child_process.Popen)
    assert process.communicate()[0].strip() == b"ok"


def child_survives_its_parent(tmp_path: Path, start_child: str) -> bool:
    """Run a Python parent whose code ``start_child`` starts a child and binds its pid to
    ``pid``; SIGKILL the parent (nothing of it runs then) once the child is up, and say whether
    the child is still running 10 s later."""
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([
        sys.executable, "-c",
        f"import sys, time; {start_child}; open({str(pid_file)!r}, 'w').write(str(pid)); time.sleep(60)",
    ], cwd=Path(__file__).resolve().parent.parent)
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()):
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert child in _processes()
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while child in _processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    return child in _processes()


def test_child_is_killed_when_its_parent_is(tmp_path):
    """The kernel's signal, without any Dagster or dbt: a parent SIGKILLed mid-way."""
    assert not child_survives_its_parent(tmp_path, (
        "from prrt import child_process;"
        " pid = child_process.Popen([sys.executable, '-c', 'import time; time.sleep(60)']).pid"))
