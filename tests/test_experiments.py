"""The experiment commands: JSON contents, run sharing between experiments, verdicts, the generated report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genpas.data.synth import SynthConfig, synthesize, write_table
from genpas.search.experiments import default_sizes, paired_verdict, run_key, spread
from genpas.train.config import TrainConfig


def test_spread_and_paired_verdict():
    s = spread([0.1, 0.2, 0.3])
    assert s["mean"] == pytest.approx(0.2) and s["std"] == pytest.approx(0.1)
    assert spread([0.5])["std"] == 0.0
    # Differences 0.010, 0.012, 0.011: mean 0.011, SE 0.000577 -> a win.
    v = paired_verdict([0.11, 0.112, 0.111], [0.1, 0.1, 0.1])
    assert v["verdict"] == "win" and v["mean_difference"] == pytest.approx(0.011)
    assert v["relative"] == pytest.approx(0.11)
    assert paired_verdict([0.09, 0.088, 0.089], [0.1, 0.1, 0.1])["verdict"] == "loss"
    assert paired_verdict([0.11, 0.09, 0.1], [0.1, 0.1, 0.1])["verdict"] == "tie"
    assert paired_verdict([0.11], [0.1])["verdict"] == "single seed"
    two = paired_verdict([0.1065, 0.1064], [0.1, 0.1])  # two seeds alike: a tiny standard error, still no verdict
    assert two["verdict"] == "too few seeds" and two["standard_error"] == pytest.approx(0.00005)


def test_the_chance_of_a_win_by_luck_is_student_s_t_and_the_report_gives_it():
    from scipy.stats import t

    from genpas.search.experiment_report import verdict_sentence
    from genpas.search.experiments import chance_beyond

    for df in (1, 2, 3, 9, 59):
        assert chance_beyond(2.0, df) == pytest.approx(2 * t.sf(2.0, df), abs=1e-8)
    win = paired_verdict([0.11, 0.112, 0.111], [0.1, 0.1, 0.1])
    assert win["seeds"] == 3 and win["chance_beyond_two_se"] == pytest.approx(0.1835, abs=1e-4)
    assert "**GenPAS wins**" in (text := verdict_sentence(win, "NDCG@10", "test"))
    assert "with 3 seeds, 18 % of comparisons of two equal strategies get that far by chance" in text
    assert "2 degrees of freedom" in text
    tie = verdict_sentence(paired_verdict([0.11, 0.09, 0.1], [0.1, 0.1, 0.1]), "NDCG@10", "test")
    assert "**tie**" in tie and "by chance" not in tie
    old = {k: v for k, v in win.items() if k not in ("seeds", "chance_beyond_two_se")}  # a file of an earlier rule
    assert verdict_sentence(old, "NDCG@10", "test").endswith("(win/loss means beyond two standard errors).")


def test_the_summary_leads_with_test_and_says_what_qualifies_it():
    from genpas.search.experiment_report import _summary

    def metric(values):
        return {"mean": sum(values) / len(values), "std": 0.0, "values": values}

    def row(label, valid, test):
        return {"label": label, "valid": {"ndcg@10": metric(valid)}, "test": {"ndcg@10": metric(test)}}

    result = {"seeds": [0, 1, 2], "genpas": [0.0, 1.0, 1.0], "genpas_vs_mt": {},
              "strategies": {"mt": row("MT", [0.20, 0.21, 0.22], [0.19, 0.20, 0.21]),
                             "genpas": row("GenPAS(0, 1, 1)", [0.211, 0.2205, 0.2312], [0.19, 0.2001, 0.2099])}}
    search = {"seed": 0, "best": {"strategy": "genpas", "alpha": 0.0, "beta": 1.0, "gamma": 1.0,
                                  "valid": {"ndcg@10": 0.211}},
              "baselines": {"lt": {"stopped_by": "patience"}, "mt": {"stopped_by": "patience"},
                            "sw": {"stopped_by": "pruned", "pruned": {"epoch": 40}, "best_epoch": 39,
                                   "valid": {"ndcg@10": 0.15}}}}
    lines = _summary(result, search)
    assert "for the one baseline trained over these seeds (MT)" in lines[2]
    assert lines[3].startswith("- **Test NDCG@10, the comparison that decides**") and "**tie**" in lines[3]
    assert lines[4].startswith("- Valid NDCG@10, the split the runs stop on") and "**GenPAS wins**" in lines[4]
    assert any("the search's own" in x for x in lines)
    caution = next(x for x in lines if "its pruning stopped" in x)
    assert "LT, MT, SW on seed 0" in caution and "SW at epoch 40 (best validation NDCG@10 0.1500, at epoch 39)" in caution
    assert not any("its pruning stopped" in x for x in _summary(result, search | {"baselines": {}}))
    capped = search | {"baselines": search["baselines"] | {"lt": {"stopped_by": "epochs", "epochs_run": 50,
                                                                   "best_epoch": 49, "valid": {"ndcg@10": 0.1}}}}
    caution = next(x for x in _summary(result, capped) if "its pruning stopped" in x)
    assert "; its epoch cap ended LT after 50 epochs (best validation NDCG@10 0.1000, at epoch 49) before validation " \
           "patience did. Whether a converged SW or LT would be" in caution
    assert not any("Not converged" in x for x in lines)  # no run records why it ended: nothing to say
    # a run the epoch cap ended, not patience, is named as not converged
    result["config"] = {"epochs": 4, "patience": 3}
    for name, ended in (("mt", ["patience", "patience", "epochs"]), ("genpas", ["patience"] * 3)):
        result["strategies"][name] |= {"stopped_by": ended, "best_epoch": [0, 1, 3], "curves": [[[1, 0.1]] * 4] * 3}
    capped = next(x for x in _summary(result, search) if "Not converged" in x)
    assert "validation patience (3 epochs without gain), ended MT seed 2 after 4 epochs, its best at epoch 3" in capped


def test_run_key_ignores_only_what_does_not_change_results():
    base = TrainConfig()
    assert run_key(base) == run_key(TrainConfig(progress=False, threads=1, device="cpu"))
    assert run_key(base) != run_key(TrainConfig(seed=1))
    assert run_key(base) != run_key(TrainConfig(num_pairs=10, fixed_budget=True))
    assert run_key(base) != run_key(TrainConfig(budget_pairs=10))
    assert run_key(TrainConfig(model="sasrec")) == run_key(TrainConfig(model="sasrec", levels=5))
    assert run_key(TrainConfig(model="tiger", mode="pairs")) != run_key(TrainConfig(model="tiger", mode="pairs", levels=5))


def test_default_sizes_vary_one_factor_at_a_time():
    assert default_sizes((32, 64), (1, 2, 4), (64, 2)) == [(32, 2), (64, 2), (64, 1), (64, 4)]


@pytest.fixture
def tiny(tmp_path):
    write_table(synthesize(SynthConfig(users=50, items=20, mean_length=8, seed=5)), tmp_path / "log.csv")
    (tmp_path / "tiny.yaml").write_text("dim: 8\nlayers: 1\nheads: 1\nmax_len: 6\nbatch_size: 32\nwarmup_steps: 2\n")
    return tmp_path


def _run(args, capsys):
    from genpas.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code, capsys.readouterr()


def test_experiments_share_runs_and_generate_the_report(tiny, capsys):
    common = ["--data", str(tiny / "log.csv"), "--out", str(tiny / "exp"), "--config", str(tiny / "tiny.yaml"),
              "--epochs", "2", "--patience", "1", "--no-progress"]
    code, _ = _run(["experiment", "strategies", *common, "--seeds", "0,1"], capsys)
    assert code == 0
    result = json.loads((tiny / "exp" / "strategies.json").read_text())
    assert set(result["strategies"]) == {"pop", "lt", "mt", "sw", "genpas"}
    assert result["seeds"] == [0, 1] and result["command"].startswith("genpas experiment strategies")
    mt = result["strategies"]["mt"]
    assert len(mt["test"]["ndcg@10"]["values"]) == 2
    assert mt["test"]["ndcg@10"]["mean"] == pytest.approx(sum(mt["test"]["ndcg@10"]["values"]) / 2)
    assert result["genpas_vs_mt"]["test"]["ndcg@10"]["verdict"] == "too few seeds"  # two seeds
    run = mt["runs"][1]
    assert run["seed"] == 1 and run["test"]["ndcg@10"] == mt["test"]["ndcg@10"]["values"][1]
    assert run["test"]["exclude_history"] is False and run["device"] == "cpu" and run["optimizer_steps"] > 0
    assert set(result["genpas_vs"]) == {"mt", "sw", "lt"} and result["genpas_vs"]["mt"] == result["genpas_vs_mt"]
    steps = {n: result["strategies"][n]["compute"]["optimizer_steps"]["values"] for n in ("lt", "mt", "sw", "genpas")}
    per_epoch = {n: [s / len(result["strategies"][n]["curves"][i]) for i, s in enumerate(v)] for n, v in steps.items()}
    assert len({x for v in per_epoch.values() for x in v}) == 1  # equal optimizer steps per epoch, every strategy
    curve = result["strategies"]["mt"]["curves"][0]
    assert [c[0] for c in curve] == sorted(c[0] for c in curve) and all(0 <= c[1] <= 1 for c in curve)
    assert (tiny / "exp" / "strategies-curves.png").stat().st_size > 1000
    ledger = (tiny / "exp" / "ledger.jsonl").read_text().splitlines()
    assert len(ledger) == 10  # 5 strategies x 2 seeds
    # User by user, per seed, from the runs' ranks.npz: the mean is exactly that seed's difference of the metrics.
    by_user = result["genpas_vs_by_user"]
    assert set(by_user) == {"mt", "sw", "lt"} and [s["seed"] for s in by_user["mt"]] == [0, 1]
    # Steps to each baseline's quality, from the runs' curves as the result keeps them.
    quality = result["genpas_quality_steps"]["mt"]
    for i, seed in enumerate(quality["seeds"]):
        level = 0.98 * max(score for _, score in result["strategies"]["mt"]["curves"][i])
        assert seed["seed"] == i and seed["level"] == pytest.approx(level)
        assert seed["baseline_steps"] == next(s for s, v in result["strategies"]["mt"]["curves"][i] if v >= level)
    assert "Optimizer steps (and the epochs they make) to MT's validation quality, 98 % of MT's best" in (
        tiny / "exp" / "strategies.md").read_text()
    for i, seed in enumerate(by_user["mt"]):
        expected = (result["strategies"]["genpas"]["test"]["ndcg@10"]["values"][i]
                    - result["strategies"]["mt"]["test"]["ndcg@10"]["values"][i])
        assert seed["ndcg@10"]["difference"] == pytest.approx(expected, abs=1e-12)
        assert seed["users"] == run["test"]["users"] and seed["ndcg@10"]["standard_error"] >= 0
        valid = (result["strategies"]["genpas"]["valid"]["ndcg@10"]["values"][i]
                 - result["strategies"]["mt"]["valid"]["ndcg@10"]["values"][i])  # the same over validation users
        assert seed["valid"]["ndcg@10"]["difference"] == pytest.approx(valid, abs=1e-12)

    # long-tail reuses the LT, MT and GenPAS runs: nothing new is trained.
    code, _ = _run(["experiment", "long-tail", *common, "--seeds", "0,1"], capsys)
    assert code == 0 and len((tiny / "exp" / "ledger.jsonl").read_text().splitlines()) == 10
    tail = json.loads((tiny / "exp" / "long-tail.json").read_text())
    mt_runs = [json.loads(line) for line in ledger if json.loads(line)["name"].startswith("mt-")]
    assert tail["strategies"]["mt"]["groups"]["head"]["ndcg@10"]["values"] == [
        r["test"]["groups"]["head"]["ndcg@10"] for r in mt_runs]
    # its provenance names the runs' resolved precision and devices, though its rows keep no per-run records
    assert tail["run_precisions"] == ["fp32"] * 6 and tail["run_devices"] == ["cpu"] * 6
    assert "float32, at most" in (tiny / "exp" / "long-tail.md").read_text()
    assert "Devices: cpu (6 runs)." in (tiny / "exp" / "long-tail.md").read_text()
    # beside the groups' means, GenPAS - MT paired by seed: the mean of the per-seed differences of each group
    paired = next(x for x in (tiny / "exp" / "long-tail.md").read_text().splitlines()
                  if x.startswith("| GenPAS - MT, paired by seed"))
    head = [g - m for g, m in zip(tail["strategies"]["genpas"]["groups"]["head"]["ndcg@10"]["values"],
                                  tail["strategies"]["mt"]["groups"]["head"]["ndcg@10"]["values"])]
    assert paired.split(" | ")[5].startswith(f"{sum(head) / 2:+.4f} ± ")  # head ndcg@10, the fifth group column
    # Run again over its finished runs (with progress on, which changes no run), it rewrites nothing: the same files
    # (an atomic write would replace them) and bytes.
    exp, names = tiny / "exp", ("long-tail.json", "long-tail.md", "long-tail.png")
    rerun = ["experiment", "long-tail", *[a for a in common if a != "--no-progress"], "--seeds", "0,1"]
    files = {f: ((exp / f).read_bytes(), (exp / f).stat().st_ino) for f in names}
    code, out = _run(rerun, capsys)
    assert code == 0 and out.out.splitlines()[-1] == (f"unchanged: {exp / 'long-tail.json'} (every run was finished "
                                                      "already and the results are the same)")
    assert {f: ((exp / f).read_bytes(), (exp / f).stat().st_ino) for f in names} == files
    # A report missing beside the unchanged JSON is drawn again from the file's own result, with its plot.
    (exp / "long-tail.md").unlink()
    code, out = _run(rerun, capsys)
    assert code == 0 and out.out.splitlines()[-1].endswith(f"; drew again: {exp / 'long-tail.md'}, {exp / 'long-tail.png'}")
    assert {f: (exp / f).read_bytes() for f in names[:2]} == {f: files[f][0] for f in names[:2]}
    assert (exp / "long-tail.json").stat().st_ino == files["long-tail.json"][1]
    # A file whose result differs (here, tampered with) is replaced whole, JSON included.
    tampered = json.loads((exp / "long-tail.json").read_text()) | {"seeds": [7]}
    (exp / "long-tail.json").write_text(json.dumps(tampered))
    before = {f: (exp / f).stat().st_ino for f in names}  # each replacement is made while the file it replaces exists
    code, out = _run(rerun, capsys)
    assert code == 0 and out.out.splitlines()[-1] == "wrote " + ", ".join(str(exp / f) for f in names)
    assert json.loads((exp / "long-tail.json").read_text())["seeds"] == [0, 1]
    assert all((exp / f).stat().st_ino != before[f] for f in names)

    code, _ = _run(["experiment", "data-efficiency", *common, "--fractions", "0.1,1"], capsys)
    assert code == 0
    eff = json.loads((tiny / "exp" / "data-efficiency.json").read_text())
    assert [r["fraction"] for r in eff["rows"]] == [0.1, 1.0]
    assert eff["rows"][0]["num_pairs"] == round(0.1 * eff["mt_pair_count"])
    runs = [json.loads(line) for line in (tiny / "exp" / "ledger.jsonl").read_text().splitlines()][10:]
    assert len(runs) == 4 and all(r["config"]["budget_pairs"] in (eff["rows"][0]["num_pairs"], eff["mt_pair_count"])
                                  for r in runs)

    code, _ = _run(["experiment", "model-size", *common, "--dims", "8,16", "--depths", "1"], capsys)
    assert code == 0
    size = json.loads((tiny / "exp" / "model-size.json").read_text())
    assert [(r["dim"], r["layers"]) for r in size["rows"]] == [(8, 1), (16, 1)]
    # The reference model (8 wide, 1 layer, seed 0) was trained by `strategies`: only the 16-wide runs are new.
    assert len((tiny / "exp" / "ledger.jsonl").read_text().splitlines()) == 16

    # Another model in the same store: its own result files, the SASRec tables untouched, a paired comparison.
    before = (tiny / "exp" / "strategies.json").read_text()
    code, _ = _run(["experiment", "strategies", *common, "--seeds", "0,1", "--model", "hstu", "--strategies",
                    "mt,genpas"], capsys)
    assert code == 0 and (tiny / "exp" / "strategies.json").read_text() == before
    hstu = json.loads((tiny / "exp" / "strategies-hstu.json").read_text())
    assert hstu["config"]["model"] == "hstu" and set(hstu["strategies"]) == {"mt", "genpas"}
    assert len((tiny / "exp" / "ledger.jsonl").read_text().splitlines()) == 20

    for name in ("strategies", "long-tail", "data-efficiency", "model-size", "strategies-hstu"):
        assert (tiny / "exp" / f"{name}.png").stat().st_size > 1000
        assert (tiny / "exp" / f"{name}.md").read_text().startswith("# ")

    report = tiny / "docs" / "results-x.md"
    single = json.loads(ledger[0])["name"]  # a run directory of the store, tabulated as a single run
    code, _ = _run(["experiment", "report", "--out", str(tiny / "exp"), "--to", str(report), "--run",
                    str(tiny / "exp" / "runs" / single)], capsys)
    assert code == 0
    text = report.read_text()
    g = result["strategies"]["genpas"]["test"]["ndcg@10"]
    assert f"{g['mean']:.4f} ± {g['std']:.4f}" in text  # the numbers come from the JSON
    assert "Seeds: 0, 1" in text and "## Data efficiency" in text
    assert (tiny / "docs" / "results" / "results-x" / "model-size.png").exists()
    assert "## Single runs" in text and single in text
    own = (tiny / "exp" / "strategies.md").read_text()  # the experiment's own page says it too
    opening = "- User by user, test NDCG@10 (and validation NDCG@10 where both runs keep its ranks), GenPAS - MT"
    assert any(line.startswith(opening) for line in own.splitlines())
    sentence = next(line for line in text.splitlines() if line.startswith(opening))
    first = result["genpas_vs_by_user"]["mt"][0]
    d, v = first["ndcg@10"], first["valid"]["ndcg@10"]
    assert (f"seed 0 test {d['difference']:+.4f} ± {d['standard_error']:.4f} (" in sentence
            and f"), validation {v['difference']:+.4f} ± {v['standard_error']:.4f} (" in sentence)
    assert "(8 wide, 1 layers, float32)" in text  # the single run's precision: auto, resolved on the CPU
    assert "effective targets per row" in text and "strategies-curves.png" in text
    models = text[text.index("## Models compared"):].split("\n## ")[0]
    hstu_mt = next(line for line in models.splitlines() if line.startswith("| HSTU | MT |"))
    m = hstu["strategies"]["mt"]["test"]["ndcg@10"]
    assert f"{m['mean']:.4f} ± {m['std']:.4f}" in hstu_mt and "2 seeds)" in hstu_mt
    assert "## Strategies compared over seeds (HSTU)" in text


def test_screening_study_samples_the_whole_kl_range(tiny, capsys):
    code, out = _run(["experiment", "screening", "--data", str(tiny / "log.csv"), "--out", str(tiny / "exp"),
                      "--config", str(tiny / "tiny.yaml"), "--epochs", "2", "--patience", "1", "--no-progress",
                      "--seeds", "0", "--settings", "5"], capsys)
    assert code == 0, out.err
    result = json.loads((tiny / "exp" / "screening.json").read_text())
    rows = result["settings"]
    assert len(rows) == 5 and all(r["ratio"] is not None for r in rows)
    kls = sorted(r["kl"] for r in rows)
    assert kls[0] < kls[-1]  # spread over the KL range, not only the lowest
    for key in ("spearman_kl_vs_valid_ndcg@10", "spearman_ratio_vs_valid_ndcg@10"):
        assert set(result[key]) == {"rho", "ci95", "bootstrap_reps"}
    sub = result["without_last_target"]  # the robustness check leaves out exactly the beta = inf settings
    assert sub["settings"] == sum(r["beta"] != float("inf") for r in rows) and sub["rule"] == "beta < inf"
    best = result["best_trained"]
    assert 1 <= best["screening_rank_in_sample"] <= 5 and 1 <= best["screening_rank_in_grid"] <= result["grid_size"]
    assert "Spearman of KL" in (tiny / "exp" / "screening.md").read_text()
    assert [b["epochs"] for b in result["bounded_search"]["rows"]] == [1, 2]  # budgets up to the longest run
    code, out = _run(["experiment", "report", "--out", str(tiny / "exp"), "--to", str(tiny / "report.md")], capsys)
    summary = (tiny / "report.md").read_text().split("## Summary")[1].split("##")[0]
    assert code == 0 and "- Screening study (5 grid settings across the whole KL range, seeds 0)" in summary
    code, out = _run(["experiment", "screening", "--out", str(tiny / "exp"), "--settings", "2"], capsys)
    assert code == 2 and "--settings" in out.err
    code, out = _run(["experiment", "screening", "--out", str(tiny / "exp"), "--settings", "100000"], capsys)
    assert code == 2 and "--settings must lie in [3, " in out.err and "got 100000" in out.err


def test_stratified_sample_bootstrap_and_screening_order():
    import numpy as np

    from genpas.search.screening_study import bootstrap_spearman, screening_rank, stratified_sample

    kls = np.arange(100, dtype=float)[::-1]
    picked = stratified_sample(kls, 10, seed=0)
    assert sorted(int(kls[i]) // 10 for i in picked) == list(range(10))  # one per decile of KL
    assert picked == stratified_sample(kls, 10, seed=0)
    perfect = bootstrap_spearman([1, 2, 3, 4, 5], [2, 4, 6, 8, 10], reps=200)
    assert perfect["rho"] == pytest.approx(1.0) and perfect["ci95"][0] == pytest.approx(1.0)
    settings = [{"kl": 0.1, "ratio": 1.0, "survivor": True, "n": "a"}, {"kl": 0.2, "ratio": 3.0, "survivor": True, "n": "b"},
                {"kl": 0.9, "ratio": 9.0, "survivor": False, "n": "c"}, {"kl": 0.5, "ratio": 0.0, "survivor": False, "n": "d"}]
    assert [s["n"] for s in screening_rank(settings)] == ["b", "a", "d", "c"]  # survivors by ratio, then by KL
    from genpas.search.screening_study import _reading

    assert _reading({"rho": -0.5, "ci95": [-0.8, -0.1]}, "negative") == ("-0.50, 95% bootstrap interval -0.80 to "
                                                                        "-0.10: the screening's premise holds")
    assert "opposite" in _reading({"rho": 0.5, "ci95": [0.1, 0.8]}, "negative")
    assert "not distinguishable from no correlation" in _reading({"rho": 0.2, "ci95": [-0.2, 0.5]}, "positive")
    assert "premise holds" in _reading({"rho": 0.5, "ci95": [0.1, 0.8]}, "positive")
    assert _reading({"rho": None, "ci95": [None, None]}, "negative") == "not measurable"
    from genpas.search.screening_study import _same_protocol

    base = TrainConfig().to_dict()
    old = {k: v for k, v in base.items() if k != "precision"}  # written before the option: LEGACY fills it
    assert _same_protocol({**base, "strategy": "genpas", "seed": 1, "threads": 1}, old)
    assert not _same_protocol(base, {**base, "max_len": 20}) and not _same_protocol(base, {**base, "precision": "bf16"})


def test_bounded_search_reads_the_pick_of_each_budget_from_the_curves():
    from genpas.search.screening_study import bounded_search, screening_summary, screening_table

    def row(a, score):
        return {"alpha": a, "beta": 0.0, "gamma": 0.0, "kl": 0.1, "ratio": 1.0, "survivor": True,
                "valid": {"ndcg@10": {"mean": score, "std": 0.0}}, "test": {"ndcg@10": {"mean": score}},
                "best_epoch": [0]}

    # "fast" leads for two epochs and then stalls; "slow" overtakes at epoch 4; "flat" never leads; two seeds each
    # ("slow" seed 1 stopped early, after 4 epochs: it keeps its best)
    rows = [row(0, 0.30), row(1, 0.50), row(2, 0.20)]
    curves = [[[[10, .2], [20, .3], [30, .3], [40, .3], [50, .3]], [[10, .2], [20, .3], [30, .3], [40, .3], [50, .3]]],
              [[[10, .1], [20, .2], [30, .3], [40, .4], [50, .6]], [[10, .1], [20, .2], [30, .3], [40, .4]]],
              [[[10, .0], [20, .1], [30, .1], [40, .2], [50, .2]], [[10, .0], [20, .1], [30, .1], [40, .2], [50, .2]]]]
    got = bounded_search(rows, curves, epochs=(1, 2, 10))
    listed = got["rows"]
    assert [g["epochs"] for g in listed] == [1, 2]  # no budget past the longest run (5 epochs)
    assert [g["optimizer_steps"] for g in listed] == [10, 20]
    assert [g["pick"]["alpha"] for g in listed] == [0, 0] and [g["pick_rank_converged"] for g in listed] == [2, 2]
    # every epoch is scanned, not only the listed ones: at 3 epochs "fast" (0.3, 0.3) still leads "slow" (0.3, 0.3)
    # on ties by order, at 4 "slow" (0.4) leads for good
    assert got["enough"]["epochs"] == 4 and got["enough"]["optimizer_steps"] == 40
    assert got["enough"]["runs_at_their_best"] == 5 and got["enough"]["runs"] == 6  # "slow" seed 0 peaks at 5
    assert got["enough"]["spearman_vs_converged"] == pytest.approx(1.0)
    from_the_first = bounded_search(rows[:1] + rows[2:], curves[:1] + curves[2:])
    assert from_the_first["enough"]["epochs"] == 1  # "fast" leads from the first epoch: picked at every budget
    assert bounded_search(rows, [[[]], [[]], [[]]]) == {"rows": [], "enough": None, "missing_curves": 3}
    result = {"settings": rows, "grid_size": 150, "seeds": [0, 1], "bounded_search": got, "keep_fraction": 0.2,
              "spearman_kl_vs_valid_ndcg@10": {"rho": None, "ci95": [None, None]},
              "spearman_ratio_vs_valid_ndcg@10": {"rho": None, "ci95": [None, None]},
              "best_trained": {"alpha": 1, "beta": 0.0, "gamma": 0.0, "valid_ndcg@10": 0.5,
                               "screening_rank_in_sample": 1, "screening_rank_in_grid": 1}}
    line = next(x for x in screening_summary(result) if "fixed number of epochs" in x)
    assert ("from 4 epochs (40 optimizer steps, when 5 of 6 runs had reached their best) on; below that its pick "
            "ranks, once converged, 2 at 1, 2 at 2" in line)
    assert "| 2 | 20 | GenPAS(0, 0, 0) | 0.3000 | 2 of 3 | +0.50 | 2 of 6 |" in screening_table(result)
    # the first form of the field (a list of rows without the peak counts) still reads
    result["bounded_search"] = [{k: v for k, v in r.items() if k not in ("runs", "runs_at_their_best")}
                                for r in bounded_search(rows, curves, epochs=(1, 2, 4, 5))["rows"]]
    line = next(x for x in screening_summary(result) if "fixed number of epochs" in x)
    assert "from 4 epochs (40 optimizer steps) on; below that its pick ranks, once converged, 2 at 1, 2 at 2" in line
    assert "| 2 | 20 | GenPAS(0, 0, 0) | 0.3000 | 2 of 3 | +0.50 | n/a |" in screening_table(result)
    result["bounded_search"] = bounded_search(rows, [[[]], [[]], [[]]])
    assert any("n/a (3 runs have no validation curve" in x for x in screening_table(result))


def test_experiment_bad_options(tiny, capsys):
    code, err = _run(["experiment", "data-efficiency", "--data", str(tiny / "log.csv"), "--out", str(tiny / "e"),
                      "--fractions", "0,2"], capsys)
    assert code == 2 and "--fractions" in err.err
    code, err = _run(["experiment", "strategies", "--out", str(tiny / "e"), "--seeds", "a,b"], capsys)
    assert code == 2 and "--seeds" in err.err
    code, err = _run(["experiment", "strategies", "--out", str(tiny / "e"), "--strategies", "mt,xx"], capsys)
    assert code == 2 and "'xx'" in err.err
    code, err = _run(["experiment", "report", "--out", str(tiny / "empty")], capsys)
    assert code == 2 and "no experiment results" in err.err


def test_published_rows_stand_beside_every_model_on_ml1m():
    from genpas.search.published import PUBLISHED
    from genpas.search.published import published_section as _published_section

    def result(model, exclude, ndcg):
        metric = {"mean": ndcg, "std": 0.001, "values": [ndcg - 0.001, ndcg + 0.001]}
        return {"experiment": "strategies", "data": "ml-1m", "seeds": [0, 1],
                "config": {"model": model, "max_len": 200, "exclude_history": exclude},
                "strategies": {"mt": {"label": "MT", "test": {"ndcg@10": metric, "recall@10": metric}}}}

    sasrec = result("sasrec", True, 0.17)
    kept = {"mean": 0.15, "std": 0.002, "values": [0.148, 0.152]}
    sasrec["strategies"]["mt"]["test_history_kept"] = {"ndcg@10": kept, "recall@10": kept}
    lines = _published_section([sasrec, result("hstu", True, 0.18)])
    text = "\n".join(lines)
    assert "| SASRec, MT | genpas, 2 seeds, length 200, full softmax | 0.1700 ± 0.0010 | 0.1700 ± 0.0010 | 0.1500 ± 0.0020 | 0.1500 ± 0.0020 |" in text
    assert all(f"| {name} | published | {hr:.4f} | {ndcg:.4f} |" in text for name, hr, ndcg in PUBLISHED["ml-1m"])
    assert "| SASRec, MT | genpas, 2 seeds, length 200, full softmax | 0.1700 ± 0.0010 | 0.1700 ± 0.0010 |" in text
    assert "| HSTU, MT | genpas, 2 seeds, length 200, full softmax | 0.1800 ± 0.0010 |" in text and "Not comparable" not in text
    assert "Not comparable: HSTU" in "\n".join(_published_section([result("sasrec", True, 0.1),
                                                                   result("hstu", False, 0.1)]))
    assert _published_section([{**result("sasrec", True, 0.1), "data": "ml-100k"}]) == []
    from genpas.search.published import single_run

    run = {"config": {"data": "ml-1m", "model": "hstu", "seed": 0, "max_len": 200}, "strategy": {"label": "MT"},
           "test": {"recall@10": 0.31, "ndcg@10": 0.18, "exclude_history": True},
           "test_history_kept": {"recall@10": 0.25, "ndcg@10": 0.13}}
    kept_run = {**run, "test": {**run["test"], "exclude_history": False}}
    pop = {**run, "config": {**run["config"], "model": "pop"}}
    text = "\n".join(_published_section([sasrec], [single_run(m) for m in (run, kept_run, pop)]))
    assert text.count("| HSTU, MT | genpas, 1 run (seed 0, length 200), full softmax | 0.3100 | 0.1800 | 0.2500 | 0.1300 |") == 1
    assert "1 single run(s) of other data or ranked with the history kept are not listed here" in text
    assert "pop" not in text.split("| genpas, 1 run")[0].split("\n")[-1]  # no popularity row
    alone = "\n".join(_published_section([], [single_run({**run, "config": {**run["config"], "max_len": 50}})]))
    assert "max length 50," not in alone and "| HSTU, MT | genpas, 1 run (seed 0, length 50), full softmax | 0.3100 | 0.1800 |" in alone
    sampled = single_run({**run, "config": {**run["config"], "negatives": 128}})
    assert "| HSTU, MT | genpas, 1 run (seed 0, length 200), sampled softmax, 128 negatives |" in "\n".join(
        _published_section([], [sampled]))
    assert "they train with a sampled softmax over 128 negatives" in text
    for damaged in ({**run, "config": {"model": "hstu"}}, {**run, "test_history_kept": {"ndcg@10": 0.1}}):
        with pytest.raises((KeyError, TypeError)):  # the report turns these into one line naming the file
            single_run(damaged)


def test_flags_left_out_keep_the_config_and_flags_given_override_it(tmp_path):
    from genpas.cli.experiment_cmds import settings_from

    (tmp_path / "c.yaml").write_text("data: ml-1m\nmodel: hstu\nmax_len: 200\n")
    kept = settings_from(None, "0", None, None, None, None, tmp_path / "c.yaml", False).base
    assert (kept.data, kept.model, kept.max_len) == ("ml-1m", "hstu", 200)
    given = settings_from("ml-100k", "0", None, None, None, None, tmp_path / "c.yaml", False, model="sasrec").base
    assert (given.data, given.model, given.max_len) == ("ml-100k", "sasrec", 200)
    default = settings_from(None, "0", None, None, None, None, None, False).base
    assert (default.data, default.model) == ("ml-100k", "sasrec")


def test_a_data_flag_given_at_its_default_value_overrides_the_config(tmp_path, capsys):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp,uid\n" + "".join(
        f"u{u},i{k},{k},v{u % 2}\n" for u in range(4) for k in range(6)))
    (tmp_path / "c.yaml").write_text("user_col: uid\n")
    plan = ["--config", str(tmp_path / "c.yaml"), "--data", str(tmp_path / "log.csv"), "--seeds", "0", "--out",
            str(tmp_path / "e"), "--plan"]
    keys = []
    for extra in ([], ["--user-col", "uid"], ["--user-col", "user_id"]):
        code, out = _run(["experiment", "strategies", "--strategies", "mt", *plan, *extra], capsys)
        assert code == 0, out.err
        keys.append(out.out.split()[1])  # the run's key: its config's hash
    assert keys[0] == keys[1] != keys[2]  # `--user-col user_id` reads user_id, not the config's uid


def test_the_report_names_the_devices_of_its_runs():
    from genpas.search.provenance import _devices

    result = {"strategies": {"mt": {"runs": [{"device": "cpu"}, {"device": "cuda:0"}]},
                             "lt": {"runs": [{"device": "cpu"}, {"seed": 2}]}}}
    assert _devices(result) == " Devices: cpu (2 runs), cuda:0 (1 run)."
    assert _devices({"strategies": {}}) == ""


def test_by_user_pairs_the_seeds_whose_runs_keep_ranks(tmp_path):
    from genpas.search.experiment_report import by_user_sentence
    from genpas.search.experiments import by_user
    from genpas.train.ranks import write_ranks

    data = "d" * 64
    write_ranks(tmp_path / "runs" / "genpas-0", {"test_history_kept": np.array([1, 3, 30, 2])}, data)
    write_ranks(tmp_path / "runs" / "mt-0", {"test_history_kept": np.array([2, 3, 40, 1])}, data)
    (tmp_path / "runs" / "mt-1").mkdir()  # finished before runs kept their ranks
    write_ranks(tmp_path / "runs" / "genpas-1", {"test_history_kept": np.array([1, 1, 1, 1])}, data)

    def records(name):
        return [{"name": f"{name}-{s}", "config": {"seed": s}, "data_sha256": data} for s in (0, 1)]

    seeds = by_user(tmp_path, records("genpas"), records("mt"), exclude_history=False)
    assert seeds[1] is None and seeds[0]["seed"] == 0 and seeds[0]["users"] == 4
    gain = [1 - 1 / np.log2(3), 0, 0, 1 / np.log2(3) - 1]  # NDCG@10 per user: ranks 1 vs 2, and 2 vs 1
    assert seeds[0]["ndcg@10"]["difference"] == pytest.approx(np.mean(gain))
    assert seeds[0]["ndcg@10"]["standard_error"] == pytest.approx(np.std(gain, ddof=1) / 2)
    assert (seeds[0]["recall@10"]["difference"], seeds[0]["ndcg@10"]["a_better"]) == (0.0, 1)
    sentence = by_user_sentence(seeds, "MT", [0, 1])
    assert "seed 0 +0.0000 ± 0.1507 (within two standard errors); seed 1: not both runs keep per-user ranks" in sentence
    assert by_user(tmp_path, records("genpas"), records("mt"), exclude_history=True) == [None, None]


def test_models_compared_names_a_single_common_seed_as_such():
    from genpas.search.models_report import models_section

    def result(model, seeds, ndcg):
        metric = {"mean": ndcg, "std": 0.0, "values": [ndcg] * len(seeds)}
        row = {"label": "MT", "valid": {"ndcg@10": metric}, "test": {"ndcg@10": metric, "recall@10": metric}}
        return {"experiment": "strategies", "data": "ml-1m", "seeds": seeds, "config": {"model": model},
                "strategies": {"mt": row}}

    text = "\n".join(models_section([result("sasrec", [0, 1], 0.17), result("tiger", [0], 0.13)]))
    tiger = next(line for line in text.splitlines() if line.startswith("| TIGER | MT |"))
    assert "-0.0400 (seed 0 only)" in tiger and "seeds)" not in tiger
    assert "own options (maximum length, precision, epoch bound" in text and "not between architectures alone" in text


def test_devices_that_say_nothing_do_not_decide_the_precision_of_a_report():
    from genpas.search.provenance import precision_text

    auto = {"precision": "auto"}
    assert precision_text(auto, ["unknown", "none"]) == "bf16 autocast on CUDA, float32 elsewhere"
    assert precision_text(auto, ["cpu", "unknown"]) == "float32"
    assert precision_text(auto, ["cuda:0"]) == "bf16 autocast" and precision_text(auto, ["cuda:0", "cpu"]).endswith(
        "elsewhere")
    assert precision_text(auto, ["unknown"], ["fp32"]) == "float32"  # a run's recorded precision decides first


def test_steps_to_the_baselines_validation_quality_seed_by_seed():
    from genpas.search.quality_steps import MIN_EPOCHS, quality_sentence, quality_steps

    ramp = [[10 * (e + 1), 0.1 * (e + 1)] for e in range(10)]      # the baseline: best 1.0, level 0.98 at epoch 10
    fast = [[10 * (e + 1), min(1.2, 0.2 * (e + 1))] for e in range(8)]  # GenPAS: 1.0 at epoch 5, its best 1.2 at 6
    slow = [[10 * (e + 1), 0.09 * (e + 1)] for e in range(10)]     # never reaches 0.98 (best 0.9)
    found = quality_steps([fast, slow], [ramp, ramp], [3, 7])
    first = found["seeds"][0]
    assert first["level"] == pytest.approx(0.98) and (first["genpas_epochs"], first["genpas_steps"]) == (5, 50)
    assert (first["baseline_epochs"], first["baseline_steps"]) == (10, 100) and first["ratio"] == pytest.approx(0.5)
    assert first["genpas_steps_to_own"] == 60  # 98 % of its own best (1.176) first at epoch 6
    second = found["seeds"][1]
    assert second["genpas_steps"] is None and second["ratio"] is None and second["genpas_steps_run"] == 100
    # a seed that never got there counts as an infinite ratio: the median of {0.5, inf} is not reached
    assert (found["measured_seeds"], found["reached"], found["median_ratio"]) == (2, 1, None)
    sentence = quality_sentence(found, "MT")
    assert "seed 3: GenPAS 50 (5 epochs) against MT 100 (10 epochs), ratio 0.50; seed 7: GenPAS not in its 100 steps" in sentence
    assert "GenPAS got there on 1 of 2 seeds: no median ratio, as the median seed never did" in sentence
    three = quality_steps([fast, fast, slow], [ramp, ramp, ramp], [0, 1, 2])
    assert three["median_ratio"] == pytest.approx(0.5)  # the middle of {0.5, 0.5, inf}
    assert "GenPAS got there on 2 of 3 seeds; median ratio 0.50. Each to 98 % of its own best (seed 0 / 1 / 2): " \
           "GenPAS 60 / 60 / 100, MT 100 / 100 / 100." in quality_sentence(three, "MT")
    one = quality_sentence(quality_steps([fast], [ramp], [4]), "MT")  # one seed: its line, no median
    assert "seed 4: GenPAS 50 (5 epochs) against MT 100 (10 epochs), ratio 0.50. Each to" in one and "median" not in one

    # A baseline at its level within MIN_EPOCHS epochs gives no ratio (whole epochs only), though the steps stand.
    early = [[10, 0.5], [20, 1.0]]
    coarse = quality_steps([fast], [early], [0])["seeds"][0]
    assert MIN_EPOCHS > 2 and coarse["coarse"] and coarse["ratio"] is None and coarse["baseline_epochs"] == 2
    assert "too few epochs for a ratio" in quality_sentence(quality_steps([fast], [early], [0]), "LT")
    # No level to reach: no curve, only non-finite scores, or a best of 0; NaN epochs are passed over.
    for empty in ([], [[10, float("nan")]], [[10, 0.0], [20, 0.0]]):
        assert quality_steps([fast], [empty], [0])["seeds"] == [None]
    assert "no pair of runs keeps" in quality_sentence(quality_steps([[]], [ramp], [0]), "MT")
    assert quality_steps([fast], [[[10, float("nan")]] + ramp], [0])["seeds"][0]["baseline_steps"] == 100
    with pytest.raises(ValueError):
        quality_steps([fast], [ramp, ramp], [0, 1])  # curves and seeds must pair up


def test_the_report_names_the_search_s_own_run_among_the_seeds():
    from genpas.search.search_section import selection_note

    def rows(genpas, mt):  # test figures: GenPAS 0.01 below its validation ones, MT 0.02 below
        return {"genpas": {"label": "GenPAS(0, 1, 1)", "valid": {"ndcg@10": {"values": genpas}},
                           "test": {"ndcg@10": {"values": [v - 0.01 for v in genpas]}}},
                "mt": {"label": "MT", "valid": {"ndcg@10": {"values": mt}},
                       "test": {"ndcg@10": {"values": [v - 0.02 for v in mt]}}}}

    result = {"seeds": [0, 1, 2], "genpas": [0.0, 1.0, 1.0], "strategies": rows([0.30, 0.25, 0.27], [0.28, 0.24, 0.27])}
    search = {"seed": 0, "best": {"strategy": "genpas", "alpha": 0.0, "beta": 1.0, "gamma": 1.0,
                                  "valid": {"ndcg@10": 0.30}}}
    note = selection_note(result, search)
    assert "seed 0's GenPAS(0, 1, 1) run here is the search's own" in note
    assert "shares some of that run's luck" in note
    assert ("On the other seeds alone, GenPAS - MT: test NDCG@10 +0.0150 (seed 1 +0.0200, seed 2 +0.0100); valid "
            "NDCG@10 +0.0050 (seed 1 +0.0100, seed 2 +0.0000).") in note
    # not the search's run: another validation figure, another setting, a baseline picked, or its seed not here
    assert selection_note(result, search | {"best": search["best"] | {"valid": {"ndcg@10": 0.31}}}) is None
    assert selection_note(result | {"genpas": [0.0, "inf", 1.0]}, search) is None
    assert selection_note(result, search | {"best": {"strategy": "mt"}}) is None
    assert selection_note(result, search | {"seed": 5}) is None and selection_note(result, None) is None
    one = selection_note(result | {"seeds": [0], "strategies": rows([0.30], [0.28])}, search)
    assert one.endswith("it shares some of that run's luck.")  # no other seed to give
