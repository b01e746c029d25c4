import duckdb
import pytest

from prrt.pseudonym import hmac_sql, patient_key


@pytest.mark.parametrize("key", [b"k", b"a-much-longer-secret-key" * 5, "clé-ü".encode()])
def test_sql_hmac_equals_python_hmac(key):
    ids = ["BUMS-000001", "H-001", "Ärztin-ß", ""]
    con = duckdb.connect()
    got = [r[0] for r in con.execute(f"SELECT {hmac_sql('id', key)} FROM unnest(?) t(id)", [ids]).fetchall()]
    assert got == [patient_key(i, key) for i in ids]


def test_key_from_environment(monkeypatch, tmp_path):
    from prrt.pseudonym import pseudonym_key

    monkeypatch.setenv("PRRT_PSEUDONYM_KEY", "s3cret")
    assert pseudonym_key() == b"s3cret"
    monkeypatch.delenv("PRRT_PSEUDONYM_KEY")
    (tmp_path / "key").write_text("from-file\n")
    monkeypatch.setenv("PRRT_PSEUDONYM_KEY_FILE", str(tmp_path / "key"))
    assert pseudonym_key() == b"from-file"
