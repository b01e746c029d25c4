"""The dbt process `prrt refresh` starts ahead of time runs dagster-dbt's dbt command as the dbt
console script would: same output stream, environment, working folder and exit code."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from dagster_project.resources import _SubprocessForDbt
from prrt import config, prestarted_dbt

from .test_killed_refresh_stops_dbt import child_survives_its_parent


@pytest.fixture
def prestarted():
    prestarted_dbt.start(config.DBT_EXECUTABLE)
    process = prestarted_dbt._waiting[0]
    yield process
    prestarted_dbt.discard()
    if process.poll() is None:
        process.kill()
        process.wait()


def _dbt(args, **kwargs) -> subprocess.Popen:
    """Start dbt the way dagster-dbt 0.29 does (DbtCliInvocation.run)."""
    return _SubprocessForDbt.Popen([config.DBT_EXECUTABLE, *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, **kwargs)


def test_runs_the_command_with_the_given_environment_and_folder(prestarted, tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    env = {**os.environ, "DBT_PROFILES_DIR": str(profiles), "DBT_LOG_FORMAT": "json",
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    process = _dbt(["debug", "--config-dir"], env=env, cwd=tmp_path)
    assert process is prestarted
    events = [json.loads(line) for line in process.stdout]
    assert process.wait() == 0
    assert {e["info"]["pid"] for e in events} == {prestarted.pid}
    # dbt read the environment handed over, not the one the process started with
    assert [e["data"]["profiles_dir"] for e in events if e["info"]["name"] == "OpenCommand"] == [str(profiles)]
    assert prestarted_dbt._waiting is None  # used once


def test_failing_command_ends_as_with_the_console_script(prestarted, tmp_path):
    args = ["run", "--project-dir", str(tmp_path)]  # no dbt project there
    # no profiles folder either: dbt stops while parsing its arguments, before any timestamped line
    env = {**os.environ, "DBT_PROFILES_DIR": str(tmp_path / "missing"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    process = _dbt(args, env=env, cwd=tmp_path)
    assert process is prestarted
    assert process.args == [config.DBT_EXECUTABLE, *args]  # what dagster-dbt reports as the command
    output = process.stdout.read().decode()
    script = subprocess.run([config.DBT_EXECUTABLE, *args], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert (process.wait(), output) == (script.returncode, script.stdout + script.stderr)
    assert script.returncode != 0 and "Error" in output


def test_other_commands_start_as_before(prestarted, tmp_path):
    other = _SubprocessForDbt.Popen(["true"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    quiet = _SubprocessForDbt.Popen([config.DBT_EXECUTABLE, "--version"], stdout=subprocess.DEVNULL)
    assert other is not prestarted and quiet is not prestarted
    assert other.wait() == 0 and quiet.wait() == 0
    assert prestarted.poll() is None  # still waiting for its command


def test_a_dead_process_is_replaced(prestarted, tmp_path):
    prestarted.kill()
    prestarted.wait()
    process = _dbt(["--version"], cwd=tmp_path)
    assert process is not prestarted
    assert b"Core:" in process.stdout.read()
    assert process.wait() == 0


def test_unused_process_ends_when_discarded(prestarted):
    prestarted_dbt.discard()
    assert prestarted.returncode is not None
    assert prestarted_dbt._waiting is None


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_dies_with_the_refresh_that_started_it(tmp_path):
    """SIGKILL of the refresh ends the dbt process waiting for its command too."""
    assert not child_survives_its_parent(tmp_path, (
        "from prrt import config, prestarted_dbt; prestarted_dbt.start(config.DBT_EXECUTABLE);"
        " pid = prestarted_dbt._waiting[0].pid"))
