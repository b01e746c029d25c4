"""patient_key = HMAC-SHA256(key, patient_id): pinned to RFC 4231's test vectors, not to our own code."""

import duckdb
import pytest

from prrt.config import DEFAULT_RAW_DIR
from prrt.pseudonym import (
    DEVELOPMENT_KEY,
    PseudonymKeyError,
    check_key_allowed,
    hmac_sql,
    patient_key,
    pseudonym_key,
)

# RFC 4231 section 4, HMAC-SHA-256 (test cases with text data; case 5 is truncated output).
RFC_4231 = [
    (b"\x0b" * 20, "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 131, "Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, ("This is a test using a larger than block-size key and a larger than block-size data. "
     "The key needs to be hashed before being used by the HMAC algorithm."),
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


@pytest.mark.parametrize(("key", "data", "expected"), RFC_4231, ids=["case1", "case2", "case6", "case7"])
def test_sql_hmac_matches_rfc_4231(key, data, expected):
    con = duckdb.connect()
    assert con.execute(f"SELECT {hmac_sql('m', key)} FROM (SELECT ? AS m)", [data]).fetchone()[0] == expected
    assert patient_key(data, key) == expected


@pytest.mark.parametrize("key", [b"k", b"a-much-longer-secret-key" * 5, "clé-ü".encode()])
def test_sql_hmac_equals_python_hmac(key):
    ids = ["BUMS-000001", "H-001", "Ärztin-ß", ""]
    con = duckdb.connect()
    got = [r[0] for r in con.execute(f"SELECT {hmac_sql('id', key)} FROM unnest(?) t(id)", [ids]).fetchall()]
    assert got == [patient_key(i, key) for i in ids]


def test_key_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PRRT_PSEUDONYM_KEY", "s3cret")
    assert pseudonym_key() == b"s3cret"
    monkeypatch.delenv("PRRT_PSEUDONYM_KEY")
    (tmp_path / "key").write_text("from-file\n")
    monkeypatch.setenv("PRRT_PSEUDONYM_KEY_FILE", str(tmp_path / "key"))
    assert pseudonym_key() == b"from-file"


def test_empty_or_missing_key_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PRRT_PSEUDONYM_KEY", "  ")
    with pytest.raises(PseudonymKeyError, match="PRRT_PSEUDONYM_KEY is set but empty"):
        pseudonym_key()
    monkeypatch.delenv("PRRT_PSEUDONYM_KEY")
    (tmp_path / "key").write_text("\n")
    monkeypatch.setenv("PRRT_PSEUDONYM_KEY_FILE", str(tmp_path / "key"))
    with pytest.raises(PseudonymKeyError, match="is empty"):
        pseudonym_key()
    monkeypatch.setenv("PRRT_PSEUDONYM_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(PseudonymKeyError, match="cannot be read"):
        pseudonym_key()


def test_development_key_only_for_the_demo_export(tmp_path):
    dev = DEVELOPMENT_KEY.encode()
    check_key_allowed(dev, DEFAULT_RAW_DIR)  # the bundled demo export
    check_key_allowed(dev, tmp_path, allow_development_key=True)  # explicitly allowed test data
    check_key_allowed(b"a-secret", tmp_path)  # a real key: any export
    with pytest.raises(PseudonymKeyError, match="--allow-development-key"):
        check_key_allowed(dev, tmp_path)
