"""The generative recommenders side by side: the strategies experiments of several models (SASRec, HSTU, TIGER) in
one table of the results report, each model against SASRec paired by seed."""

from __future__ import annotations

MODEL_NAMES = {"sasrec": "SASRec", "hstu": "HSTU", "tiger": "TIGER"}


def mean_std(s: dict) -> str:
    """mean ± std (the std only where there are several seeds)."""
    return f"{s['mean']:.4f} ± {s['std']:.4f}" if len(s["values"]) > 1 else f"{s['mean']:.4f}"


def models_section(results: list[dict]) -> list[str]:
    """The generative recommenders side by side: every (model, strategy) of the strategies experiments, and each
    other model against SASRec on the seeds both trained (paired, as GenPAS against MT)."""
    from genpas.search.experiments import paired_verdict

    if len(results) < 2:
        return []
    by_model = {r["config"]["model"]: r for r in results}
    lines = ["## Models compared", "",
             "The strategies experiment of each model, on the same split and evaluation protocol, over the seeds its "
             "row counts, each model with its own options (maximum length, precision, epoch bound: see its section "
             "below), so a difference between models is between those recipes, not between architectures alone. The "
             "metric columns: mean ± standard deviation over the seeds. The difference to SASRec is paired by seed, on "
             "the seeds both trained: mean ± standard error of the per-seed differences of test NDCG@10; a win or a "
             "loss needs more than two standard errors and at least 3 seeds.", "",
             "| model | strategy | seeds | valid ndcg@10 | test ndcg@10 | test recall@10 | vs SASRec (test ndcg@10) "
             "| mean optimizer steps | device |", "|---" * 9 + "|"]
    base = by_model.get("sasrec")
    for model, result in by_model.items():
        for name, row in result["strategies"].items():
            if name == "pop":
                continue
            versus = ""
            other = base["strategies"].get(name) if base is not None and model != "sasrec" else None
            if other is not None:
                mine = dict(zip(result["seeds"], row["test"]["ndcg@10"]["values"]))
                theirs = dict(zip(base["seeds"], other["test"]["ndcg@10"]["values"]))
                common = sorted(set(mine) & set(theirs))
                if common:
                    v = paired_verdict([mine[s] for s in common], [theirs[s] for s in common])
                    se = "" if v["standard_error"] is None else f" ± {v['standard_error']:.4f}"
                    on = (f"seed {common[0]} only" if len(common) == 1 else
                          f"{v['verdict']}, {len(common)} seeds")
                    versus = f"{v['mean_difference']:+.4f}{se} ({on})"
            steps = row.get("compute", {}).get("optimizer_steps", {}).get("mean")
            devices = ", ".join(sorted({run.get("device", "unknown") for run in row.get("runs", [])})) or "unknown"
            lines.append(f"| {MODEL_NAMES.get(model, model)} | {row['label']} | {len(row['test']['ndcg@10']['values'])} "
                         f"| {mean_std(row['valid']['ndcg@10'])} | {mean_std(row['test']['ndcg@10'])} "
                         f"| {mean_std(row['test']['recall@10'])} | {versus} | {'' if steps is None else f'{steps:,.0f}'} "
                         f"| {devices} |")
    return lines + [""]
