"""Pseudonymisation: ``patient_key`` = HMAC-SHA256(key, patient_id), computed inside DuckDB.

The key comes from ``PRRT_PSEUDONYM_KEY``, or from the file named by
``PRRT_PSEUDONYM_KEY_FILE``. Without either, a documented development key is used: it is
public (it is in this file), so anyone could rebuild every ``patient_key`` from a list of
record numbers. It is accepted only for the bundled demo export, or with an explicit
``--allow-development-key`` (test data); a refresh that uses it says so in its progress
output and in ``audit.refresh_history``, and the app shows a banner. The same key gives the
same ``patient_key`` on every refresh, so keys are stable across nights.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

DEVELOPMENT_KEY = "prrt-development-key-not-for-real-patients"
_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104)


class PseudonymKeyError(ValueError):
    """The pseudonym key is missing, empty or not allowed for this export."""


def pseudonym_key() -> bytes:
    """The configured key. A variable that is set but empty, or an empty or unreadable key
    file, is an error, never a silent fall-back to the development key."""
    if "PRRT_PSEUDONYM_KEY" in os.environ:
        key = os.environ["PRRT_PSEUDONYM_KEY"]
        if not key.strip():
            raise PseudonymKeyError("PRRT_PSEUDONYM_KEY is set but empty: set the secret key, or unset it")
        return key.encode()
    if "PRRT_PSEUDONYM_KEY_FILE" in os.environ:
        key_file = Path(os.environ["PRRT_PSEUDONYM_KEY_FILE"])
        try:
            key = key_file.read_bytes().strip()
        except OSError as error:
            raise PseudonymKeyError(
                f"PRRT_PSEUDONYM_KEY_FILE {key_file} cannot be read ({error.strerror or error})") from None
        if not key:
            raise PseudonymKeyError(f"PRRT_PSEUDONYM_KEY_FILE {key_file} is empty: write the secret key into it")
        return key
    return DEVELOPMENT_KEY.encode()


def is_development_key(key: bytes) -> bool:
    return hmac.compare_digest(key, DEVELOPMENT_KEY.encode())


def check_key_allowed(key: bytes, raw_dir: Path, allow_development_key: bool = False) -> None:
    """Refuse the public development key for any export but the bundled demo one."""
    from .config import DEFAULT_RAW_DIR

    if not is_development_key(key) or allow_development_key:
        return
    if Path(raw_dir).resolve() == DEFAULT_RAW_DIR.resolve():
        return
    raise PseudonymKeyError(
        f"no pseudonym key is set, and the public development key is only for the bundled demo export, "
        f"not {raw_dir}: set PRRT_PSEUDONYM_KEY_FILE to a file holding a secret key (README: Security model), "
        "or pass --allow-development-key for synthetic test data"
    )


DEVELOPMENT_KEY_BANNER = (
    "patient_key uses the public development key: anyone can rebuild it from record numbers. "
    "For synthetic or demo data only."
)


def patient_key(patient_id: str, key: bytes) -> str:
    """Reference implementation (Python's hmac), used by tests and single look-ups."""
    return hmac.new(key, patient_id.encode(), hashlib.sha256).hexdigest()


def hmac_sql(column: str, key: bytes) -> str:
    """A DuckDB expression computing the HMAC of ``column`` (VARCHAR) as lower-case hex.

    HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)), written with DuckDB's sha256 on
    BLOBs so millions of identifiers are hashed in one vectorised pass."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_BLOCK, b"\0")
    ipad = bytes(b ^ 0x36 for b in padded).hex()
    opad = bytes(b ^ 0x5C for b in padded).hex()
    return (
        f"sha256(unhex('{opad}') || unhex(sha256(unhex('{ipad}') || encode({column}))))"
    )
