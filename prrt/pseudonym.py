"""Pseudonymisation: ``patient_key`` = HMAC-SHA256(key, patient_id), computed inside DuckDB.

The key comes from ``PRRT_PSEUDONYM_KEY``, or from the file named by
``PRRT_PSEUDONYM_KEY_FILE``. Without either, a documented development key is used:
fine for the demo export, never for real patients. The same key gives the same
``patient_key`` on every refresh, so keys are stable across nights.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

DEVELOPMENT_KEY = "prrt-development-key-not-for-real-patients"
_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104)


def pseudonym_key() -> bytes:
    if key := os.environ.get("PRRT_PSEUDONYM_KEY"):
        return key.encode()
    if key_file := os.environ.get("PRRT_PSEUDONYM_KEY_FILE"):
        return Path(key_file).read_bytes().strip()
    return DEVELOPMENT_KEY.encode()


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
