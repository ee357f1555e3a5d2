"""The parameter search: screening rules, the search.json contract, resumption from the ledger."""

from __future__ import annotations

import json
import math

import pytest

from genpas.data.split import leave_one_out
from genpas.data.synth import SynthConfig, synthesize, synthesize_store, write_table
from genpas.search.screening import default_grid, screen, spearman


def test_default_grid_covers_the_spec():
    grid = default_grid()
    assert len(grid) == 150 and len(set(grid)) == 150
    assert (1.0, 0.0, -math.inf) in grid and (0.0, math.inf, -math.inf) in grid


def test_screening_keeps_the_lowest_kl_and_ranks_survivors_by_ratio():
    split = leave_one_out(synthesize_store(SynthConfig(users=80, items=30, mean_length=10, seed=1)))
    rows = screen(split, samples=2)
    assert len(rows) == 150
    survivors = [r for r in rows if r["survivor"]]
    assert len(survivors) >= 30  # 20% of 150, ties at the cut kept
    worst_kept = max(r["kl"] for r in survivors)
    assert all(r["kl"] >= worst_kept - 1e-12 for r in rows if not r["survivor"])
    ratios = [r["ratio"] for r in survivors]
    assert ratios == sorted(ratios, reverse=True)
    # KL ignores gamma: one (alpha, beta) cell is kept or dropped as a whole.
    by_cell = {}
    for r in rows:
        by_cell.setdefault((r["alpha"], r["beta"]), set()).add(r["survivor"])
    assert all(len(v) == 1 for v in by_cell.values())


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) is None
    assert spearman([1, 1, 1], [1, 2, 3]) is None


def test_search_cli_contract_and_resume(tmp_path, capsys):
    from genpas.cli import main

    write_table(synthesize(SynthConfig(users=60, items=25, mean_length=8, seed=3)), tmp_path / "log.csv")
    (tmp_path / "tiny.yaml").write_text("dim: 16\nlayers: 1\nheads: 1\nmax_len: 6\nbatch_size: 16\nepochs: 2\n"
                                        "patience: 2\n")
    args = ["search", "--data", str(tmp_path / "log.csv"), "--model", "sasrec", "--top-k", "2", "--seed", "0",
            "--out", str(tmp_path / "s"), "--config", str(tmp_path / "tiny.yaml"), "--samples", "2", "--no-progress"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 0
    result = json.loads((tmp_path / "s" / "search.json").read_text())
    assert len(result["screened"]) >= 100
    assert all({"alpha", "beta", "gamma", "kl", "ratio"} <= set(r) for r in result["screened"])
    assert len(result["trained"]) == 2
    assert all({"alpha", "beta", "gamma", "valid", "test"} <= set(t) for t in result["trained"])
    assert set(result["baselines"]) == {"lt", "mt", "sw"}
    assert all({"valid", "test"} <= set(b) and "ndcg@10" in b["test"] for b in result["baselines"].values())
    assert {"alpha", "beta", "gamma", "valid", "test"} <= set(result["best"])
    assert result["best"]["valid"]["ndcg@10"] >= result["best_baseline_valid_ndcg@10"]
    ledger = (tmp_path / "s" / "ledger.jsonl").read_text().splitlines()
    assert len(ledger) == 5
    # Resume: a rerun trains nothing new (the ledger is complete) and gives the same answer.
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(args)
    assert len((tmp_path / "s" / "ledger.jsonl").read_text().splitlines()) == 5
    again = json.loads((tmp_path / "s" / "search.json").read_text())
    assert again["best"] == result["best"] and again["trained"] == result["trained"]


def test_search_with_tiger_takes_its_defaults(tmp_path, capsys):
    from genpas.cli import main

    write_table(synthesize(SynthConfig(users=40, items=20, mean_length=7, seed=3)), tmp_path / "log.csv")
    (tmp_path / "tiny.yaml").write_text("dim: 16\nlayers: 1\nheads: 2\nepochs: 1\nlevels: 2\ncodebook_size: 4\n"
                                        "beam: 10\nitem_embeddings: cooccurrence\n")
    with pytest.raises(SystemExit) as exc:
        main(["search", "--data", str(tmp_path / "log.csv"), "--model", "tiger", "--top-k", "1", "--out",
              str(tmp_path / "s"), "--config", str(tmp_path / "tiny.yaml"), "--samples", "2", "--no-progress"])
    assert exc.value.code == 0
    result = json.loads((tmp_path / "s" / "search.json").read_text())
    assert result["model"] == "tiger" and result["config"]["mode"] == "pairs" and result["config"]["beam"] == 10
    assert len(result["trained"]) == 1 and set(result["baselines"]) == {"lt", "mt", "sw"}
    with pytest.raises(SystemExit) as exc:
        main(["search", "--model", "bert4rec", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2 and "sasrec, hstu or tiger" in capsys.readouterr().err


def test_processes_share_a_search(tmp_path, monkeypatch):
    """A job another process holds is skipped, then waited for; a job it finished meanwhile is read back, not
    retrained; the result is the one a lone process gets."""
    import fcntl
    from dataclasses import replace

    from genpas.search import trained
    from genpas.search.run_store import LeftToOthers, RunStore, run_key
    from genpas.train.config import TrainConfig

    write_table(synthesize(SynthConfig(users=60, items=25, mean_length=8, seed=3)), tmp_path / "log.csv")
    base = TrainConfig(data=str(tmp_path / "log.csv"), dim=16, layers=1, heads=1, max_len=6, batch_size=16, epochs=2,
                       patience=2, progress=False)
    alone = trained.search(base, tmp_path / "alone", top_k=2, samples=2)
    lone_records = [line for line in (tmp_path / "alone" / "ledger.jsonl").read_text().splitlines()]

    keys = {name: f"{name}-{run_key(replace(base, strategy=name))}" for name in ("mt", "sw")}
    strangers = {}
    for name, key in keys.items():  # "another process" claims these two runs
        (tmp_path / "s" / "runs" / ".claims").mkdir(parents=True, exist_ok=True)
        strangers[key] = open(tmp_path / "s" / "runs" / ".claims" / key, "w")
        fcntl.flock(strangers[key], fcntl.LOCK_EX | fcntl.LOCK_NB)
    order, real = [], RunStore.train

    def train(self, cfg, key, wait=True, prune=None):
        if wait and key in strangers:  # the second pass reached a held run: the other process ends
            assert len(order) == 3 + (key == keys["sw"])  # LT and the two GenPAS settings first (then MT)
            if key == keys["sw"]:  # ...having finished it: its record is in the ledger
                with open(tmp_path / "s" / "ledger.jsonl", "a") as fh:
                    fh.write(next(line for line in lone_records if json.loads(line)["name"] == key) + "\n")
            strangers.pop(key).close()
        record = real(self, cfg, key, wait, prune)  # RunBusy for a held run in the first pass
        order.append(key)
        return record

    monkeypatch.setattr(RunStore, "train", train)
    shared = trained.search(base, tmp_path / "s", top_k=2, samples=2)
    assert order[-2:] == [keys["mt"], keys["sw"]] and not strangers
    assert (tmp_path / "s" / "runs" / keys["mt"] / "metrics.json").exists()  # trained after the wait
    assert not (tmp_path / "s" / "runs" / keys["sw"] / "metrics.json").exists()  # read back, never trained here

    def results(r):  # everything but the measured seconds
        def strip(d):
            return {k: v for k, v in d.items() if k != "train_seconds"}
        return r["best"], [strip(t) for t in r["trained"]], {b: strip(v) for b, v in r["baselines"].items()}

    assert results(shared) == results(alone)

    # A process that does not wait leaves a training another process holds, and writes no search.json.
    monkeypatch.setattr(RunStore, "train", real)
    held = open(tmp_path / "s" / "runs" / ".claims" / keys["mt"], "w")  # 'another process' trains MT again
    (tmp_path / "s" / "ledger.jsonl").write_text("".join(line + "\n" for line in lone_records
                                                         if json.loads(line)["name"] != keys["mt"]))
    (tmp_path / "s" / "search.json").unlink()
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with pytest.raises(LeftToOthers, match=keys["mt"]):
        trained.search(base, tmp_path / "s", top_k=2, samples=2, wait=False)
    assert not (tmp_path / "s" / "search.json").exists()
    held.close()
    assert results(trained.search(base, tmp_path / "s", top_k=2, samples=2, wait=False)) == results(alone)


def test_a_search_and_the_experiments_of_one_directory_share_runs(tmp_path):
    """The search's baseline of its seed is the strategies experiment's run of that seed: trained once."""
    from genpas.search import trained
    from genpas.search.experiments import ExperimentSettings, RunStore, run_strategies
    from genpas.train.config import TrainConfig

    write_table(synthesize(SynthConfig(users=60, items=25, mean_length=8, seed=3)), tmp_path / "log.csv")
    base = TrainConfig(data=str(tmp_path / "log.csv"), dim=16, layers=1, heads=1, max_len=6, batch_size=16, epochs=2,
                       patience=2, progress=False)
    result = trained.search(base, tmp_path / "d", top_k=1, samples=2)
    ledger = (tmp_path / "d" / "ledger.jsonl").read_text().splitlines()
    assert len(ledger) == 4
    strategies = run_strategies(ExperimentSettings(base, seeds=(0,)), RunStore(tmp_path / "d"), names=("lt", "mt"))
    assert len((tmp_path / "d" / "ledger.jsonl").read_text().splitlines()) == 4  # nothing trained again
    mt = strategies["strategies"]["mt"]["runs"][0]
    assert mt["valid"]["ndcg@10"] == result["baselines"]["mt"]["valid"]["ndcg@10"]
    assert result["baselines"]["mt"]["stopped_by"] in ("patience", "epochs")
    assert result["baselines"]["mt"]["epochs_run"] >= 1 and result["baselines"]["mt"]["optimizer_steps"] > 0


def test_a_search_recorded_before_the_run_store_is_read_back(tmp_path):
    """Ledger lines keyed by the job's name (searches before they shared the run store) are reused, not retrained."""
    import shutil

    from genpas.search import trained
    from genpas.train.config import TrainConfig
    from genpas.train.trainer import PROTOCOL

    write_table(synthesize(SynthConfig(users=60, items=25, mean_length=8, seed=3)), tmp_path / "log.csv")
    base = TrainConfig(data=str(tmp_path / "log.csv"), dim=16, layers=1, heads=1, max_len=6, batch_size=16, epochs=2,
                       patience=2, progress=False)
    first = trained.search(base, tmp_path / "d", top_k=1, samples=2)
    path = tmp_path / "d" / "ledger.jsonl"
    old = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        c = r["config"]
        name = (c["strategy"] if c["strategy"] != "genpas" else
                trained._name(*(float(c[k]) for k in ("alpha", "beta", "gamma"))))
        old.append(json.dumps({"name": name, "config": c, "protocol": PROTOCOL, "valid": r["valid"], "test": r["test"],
                               "best_epoch": r["best_epoch"], "train_seconds": r["train_seconds"]}))
    path.write_text("\n".join(old) + "\n")
    runs = tmp_path / "d" / "runs"
    # the old layout: MT's training was left unfinished in runs/mt (its ledger line lost)
    mt_dir = next(d for d in runs.iterdir() if d.name.startswith("mt-"))
    (mt_dir / "metrics.json").unlink()
    for d in runs.iterdir():
        if d.name.startswith(("lt-", "sw-", "genpas-")):
            shutil.rmtree(d)
    mt_dir.rename(runs / "mt")
    path.write_text("".join(line + "\n" for line in old if json.loads(line)["name"] != "mt"))
    again = trained.search(base, tmp_path / "d", top_k=1, samples=2)
    assert not (runs / "mt").exists() and (mt_dir / "metrics.json").exists()  # resumed where it stood
    assert len(path.read_text().splitlines()) == 4  # MT's record appended; the others read back, not retrained
    assert not any(d.name.startswith(("lt-", "sw-", "genpas-")) for d in runs.iterdir())
    assert again["best"] == first["best"]


def test_search_plan_and_screening_cache(tmp_path, capsys, monkeypatch):
    """--plan lists the trainings and their states and writes nothing; the screening is computed once and read back
    by every later process (same rows, inf included); a damaged cache is one clear error."""
    from genpas.cli import main
    from genpas.search import trained

    write_table(synthesize(SynthConfig(users=60, items=25, mean_length=8, seed=3)), tmp_path / "log.csv")
    (tmp_path / "tiny.yaml").write_text("dim: 16\nlayers: 1\nheads: 1\nmax_len: 6\nbatch_size: 16\nepochs: 2\n"
                                        "patience: 2\n")
    out = tmp_path / "s"
    args = ["search", "--data", str(tmp_path / "log.csv"), "--top-k", "2", "--out", str(out), "--config",
            str(tmp_path / "tiny.yaml"), "--samples", "2", "--no-progress"]

    def run(extra=()):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(args + list(extra))
        return exc.value.code, capsys.readouterr()

    code, printed = run(["--plan"])
    assert code == 0 and not out.exists()
    lines = printed.out.splitlines()
    assert lines[-1] == "5 trainings: 0 finished, 0 running, 0 started, 5 pending"
    assert [line.split()[1] for line in lines[:-1]][:3] == ["lt", "mt", "sw"]

    assert run()[0] == 0
    caches = list(out.glob("screening-*.json"))
    assert len(caches) == 1
    first = json.loads((out / "search.json").read_text())
    code, printed = run(["--plan"])
    assert printed.out.splitlines()[-1] == "5 trainings: 5 finished, 0 running, 0 started, 0 pending"
    assert all("epochs, best valid ndcg@10" in line for line in printed.out.splitlines()[:-1])

    def no_screening(*a, **k):
        raise AssertionError("screened again")

    monkeypatch.setattr(trained, "screen", no_screening)
    assert run()[0] == 0
    again = json.loads((out / "search.json").read_text())
    assert again["screened"] == first["screened"] and again["best"] == first["best"]
    assert any(r["beta"] == "inf" for r in again["screened"])  # infinities survive the cache

    saved = json.loads(caches[0].read_text())
    del saved["rows"][0]["survivor"]
    for damage in ('{"facts": {}, "rows": [', "[1, 2]", json.dumps(saved)):
        caches[0].write_text(damage)
        code, printed = run()
        assert code == 2 and "screening cache" in printed.err and "delete it" in printed.err
        assert "Traceback" not in printed.err
    caches[0].unlink()
    caches[0].mkdir()
    code, printed = run()
    assert code == 2 and "screening cache" in printed.err


def test_the_screening_cache_key_sees_a_log_edited_under_the_same_counts():
    from genpas.search.trained import _fingerprint

    store = synthesize_store(SynthConfig(users=40, items=20, mean_length=8, seed=5))
    edited = synthesize_store(SynthConfig(users=40, items=20, mean_length=8, seed=5))
    edited.items[3] = (edited.items[3] + 1) % edited.num_items  # one event changed, every count the same
    assert _fingerprint(leave_one_out(store)) == _fingerprint(leave_one_out(store))
    assert _fingerprint(leave_one_out(edited)) != _fingerprint(leave_one_out(store))


@pytest.mark.parametrize("flags,message", [
    (["--top-k", "0"], "--top-k must be >= 1, got 0"),
    (["--samples", "-1"], "--samples must be >= 1, got -1"),
    (["--keep-fraction", "2"], "--keep-fraction must be in (0, 1], got 2.0"),
    (["--keep-fraction", "nan"], "--keep-fraction must be in (0, 1], got nan"),
    (["--time-budget", "-1"], "--time-budget must be > 0 minutes (the whole search's), got -1.0"),
    (["--time-budget", "nan"], "--time-budget must be > 0 minutes (the whole search's), got nan"),
])
def test_search_flags_out_of_range_are_one_line_naming_the_flag(tmp_path, capsys, flags, message):
    from genpas.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["search", "--data", "nowhere.csv", "--out", str(tmp_path / "s"), "--plan", *flags])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "s").exists()


def test_a_top_k_beyond_the_survivors_says_how_many_it_trains(tmp_path, caplog):
    from genpas.search import trained
    from genpas.train.config import TrainConfig

    write_table(synthesize(SynthConfig(users=60, items=25, mean_length=8, seed=3)), tmp_path / "log.csv")
    base = TrainConfig(data=str(tmp_path / "log.csv"), max_len=6, progress=False)
    split = trained.load_split(base)
    with caplog.at_level("WARNING"):
        screened, candidates, jobs, _ = trained._jobs(base, split, tmp_path / "s", 1000, 0, None, 0.2, 2)
    survivors = sum(r["survivor"] for r in screened)
    assert 0 < len(candidates) == survivors < 1000 and len(jobs) == 3 + survivors
    assert f"--top-k 1000: only {survivors} settings survive the screening (--keep-fraction 0.2)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        trained._jobs(base, split, tmp_path / "s", survivors, 0, None, 0.2, 2)
    assert "--top-k" not in caplog.text


def test_processes_that_start_a_search_together_screen_once(tmp_path):
    import subprocess
    import sys

    write_table(synthesize(SynthConfig(users=60, items=25, mean_length=8, seed=3)), tmp_path / "log.csv")
    script = f"""
import json, sys, time
from pathlib import Path
from genpas.search import trained
from genpas.train.config import TrainConfig

me, other = Path({str(tmp_path)!r}) / f"ready-{{sys.argv[1]}}", Path({str(tmp_path)!r}) / f"ready-{{sys.argv[2]}}"
original = trained.screen
def slow_screen(*args, **kwargs):  # long enough for the other process, already waiting, to reach the lock
    with open({str(tmp_path / "screens.txt")!r}, "a") as fh:
        fh.write("screened\\n")
    time.sleep(3.0)
    return original(*args, **kwargs)
trained.screen = slow_screen
base = TrainConfig(data={str(tmp_path / "log.csv")!r}, max_len=6, progress=False)
split = trained.load_split(base)
me.touch()
while not other.exists():  # both processes loaded and ready: they reach the screening together
    time.sleep(0.01)
rows, _ = trained._screened(split, base, Path({str(tmp_path / "s")!r}), 0.2, 2, 0)
print(json.dumps(rows))
"""
    (tmp_path / "s").mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", script, a, b], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for a, b in (("0", "1"), ("1", "0"))]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert (tmp_path / "screens.txt").read_text() == "screened\n"  # one screening; the other read its cache
    assert results[0][0] == results[1][0]
    assert sum("waiting for another process's screening" in err for _, err in results) == 1
    assert [p.name for p in (tmp_path / "s").iterdir() if not p.name.startswith(".")] == [
        p.name for p in (tmp_path / "s").glob("screening-*.json")]  # the lock is a hidden file beside the cache


def test_the_level_of_a_validation_curve_is_its_best_five_epoch_mean():
    from genpas.search import trained

    curve = [[i * 10, v] for i, v in enumerate([0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.2])]
    assert trained.level(curve) == pytest.approx((0.3 + 0.4 + 0.5 + 0.9 + 0.2) / 5)  # the spike counts for a fifth
    assert trained.level(curve[:4]) is None
    facts = trained._trained_facts({"best_epoch": 5, "train_seconds": 1.0, "curve": curve})
    assert facts["valid_ndcg@10_level"] == trained.level(curve)
