"""dbt partial parsing across refresh runs.

dbt re-parses the whole project (several seconds) unless the target folder holds a
``partial_parse.msgpack`` whose state check matches the invocation. Two things defeat it
here: each run has its own target folder, and the profile's ``path`` is the run's own build
file (dbt hashes every connection field, ``path`` included, into ``profile_hash``).

So each warehouse keeps, per dbt project folder and ``--vars`` set, the partial-parse file
of its last successful run (``.builds/dbt-parse/``) together with the build path that run
used. The next run seeds its own target folder with it, with ``profile_hash`` recomputed for
its own build path -- but only if that run's connection fields, ``path`` alone excepted, hash
to exactly what the cached file recorded (same database name, schema, settings ...). The
path is only read to open the file: no model or macro here renders ``target.path`` (the
parse uses ``target.schema`` and the database name, which the check covers). ``--vars`` are
never patched: each vars set has its own entry. If anything does not match, nothing is
seeded and dbt parses in full, as before; a changed model is dbt's usual partial parse.

Concurrent runs: each reads the cache and writes its own target folder; the cache file is
replaced atomically (write + ``os.replace``), last writer wins, any entry is valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import pprint
import tempfile
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgpack

PARTIAL_PARSE = "partial_parse.msgpack"


def _cache_file(cache_dir: Path, project_dir: Path, cli_vars: Mapping[str, Any]) -> Path:
    # the project folder too: a parse records absolute paths (seeds' root_path), so another
    # checkout refreshing the same warehouse must not reuse it
    key = hashlib.sha256(json.dumps([str(Path(project_dir).resolve()), cli_vars], sort_keys=True).encode())
    key = key.hexdigest()[:16]
    return cache_dir / f"partial_parse.{key}.msgpack"


def _connection_info(project_dir: Path, profiles_dir: Path, cli_vars: Mapping[str, Any]) -> list[tuple]:
    """The profile's connection fields as dbt sees them in this environment (PRRT_BUILD_DB set)."""
    from dbt.config.runtime import load_profile
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    set_invocation_context(os.environ.copy())
    set_from_args(Namespace(profiles_dir=str(profiles_dir)), None)
    profile = load_profile(str(project_dir), dict(cli_vars))
    return sorted(profile.credentials.connection_info())


def _profile_hash(connection_info: list[tuple]) -> str:
    # dbt.parser.manifest.ManifestLoader.build_manifest_state_check
    from dbt.contracts.files import FileHash

    return FileHash.from_contents(pprint.pformat(connection_info)).checksum


def seed(target: Path, cache_dir: Path, project_dir: Path, profiles_dir: Path,
         cli_vars: Mapping[str, Any]) -> str:
    """Put a partial-parse file valid for this run into ``target``; says what it did."""
    cache = _cache_file(cache_dir, project_dir, cli_vars)
    try:
        entry = msgpack.unpackb(cache.read_bytes(), raw=False)
        data = msgpack.unpackb(entry["partial_parse"], raw=False, strict_map_key=False)
    except FileNotFoundError:
        return "no cached parse yet: dbt parses in full"
    except Exception as error:  # noqa: BLE001 - a broken cache only costs a full parse
        return f"cached parse unreadable ({type(error).__name__}): dbt parses in full"
    info = _connection_info(project_dir, profiles_dir, cli_vars)
    then = [(k, entry["path"] if k == "path" else v) for k, v in info]
    if data.get("state_check", {}).get("profile_hash", {}).get("checksum") != _profile_hash(then):
        return "profile changed beyond the build file's path: dbt parses in full"
    data["state_check"]["profile_hash"]["checksum"] = _profile_hash(info)
    target.mkdir(parents=True, exist_ok=True)
    (target / PARTIAL_PARSE).write_bytes(msgpack.packb(data, use_bin_type=True))
    return "seeded from the last run's parse"


def store(target: Path, cache_dir: Path, project_dir: Path, build_path: Path, cli_vars: Mapping[str, Any]) -> None:
    """Keep this run's partial-parse file (written by dbt, or seeded and still valid) for the next run."""
    source = target / PARTIAL_PARSE
    if not source.exists():
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    payload = msgpack.packb({"path": str(build_path), "partial_parse": source.read_bytes()}, use_bin_type=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".partial_parse.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, _cache_file(cache_dir, project_dir, cli_vars))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
