"""Published numbers to hold genpas against, and the report section that sets genpas' rows beside them."""

from __future__ import annotations

from genpas.search.models_report import MODEL_NAMES
from genpas.search.models_report import mean_std as _ms

# Published numbers to hold genpas against: the README of github.com/meta-recsys/generative-recommenders (Zhai et al.,
# "Actions Speak Louder than Words", ICML'24, arXiv 2402.17152), its ML-1M table as it stood on 2024-04-15 (its
# frozen configs say "validated on 04/11/2024"). Protocol, from its code: maximum length 200, the last item of each
# user as target, training on every earlier item, full ranking with the user's earlier items removed. All three rows
# train with a sampled softmax over 128 negatives (configs/ml-1m/*-sampled-softmax-n128*-final.gin).
SOURCE = ("the README of github.com/meta-recsys/generative-recommenders (Zhai et al., ICML'24, arXiv 2402.17152), its "
          "ML-1M table as of 2024-04-15")
PUBLISHED = {"ml-1m": [("SASRec (sampled softmax, 128 negatives)", 0.2853, 0.1603),
                       ("HSTU (sampled softmax, 128 negatives)", 0.3097, 0.1720),
                       ("HSTU-large (sampled softmax, 128 negatives)", 0.3294, 0.1893)]}


def single_run(m: dict) -> dict:
    """What the published table needs of a run's metrics.json (a KeyError or TypeError where a field is missing: the
    report names the file)."""
    kept = m.get("test_history_kept")
    return {"data": m["config"]["data"], "model": m["config"]["model"], "max_len": int(m["config"]["max_len"]),
            "seed": m["config"]["seed"], "label": m["strategy"]["label"], "negatives": m["config"].get("negatives", 0),
            "exclude_history": bool(m["test"].get("exclude_history")),
            "test": (float(m["test"]["recall@10"]), float(m["test"]["ndcg@10"])),
            "kept": (float(kept["recall@10"]), float(kept["ndcg@10"])) if kept else None}


def published_section(results: list[dict], singles: list[dict] = ()) -> list[str]:
    """The published rows of the data set (if any) beside every model's strategies, test metrics over seeds, and
    beside the trained single runs (`single_run` of their metrics) of that data set ranked in the published protocol
    (history excluded); a single run of other data or ranked otherwise is left out, and the text says so."""
    data = results[0]["data"] if results else singles[0]["data"] if singles else None
    rows = PUBLISHED.get(data)
    if not rows:
        return []
    shown = [r for r in singles if r["data"] == data and r["exclude_history"] and r["model"] != "pop"]
    left_out = len([r for r in singles if r["model"] != "pop"]) - len(shown)
    kept = [MODEL_NAMES.get(r["config"]["model"], r["config"]["model"]) for r in results
            if not r["config"].get("exclude_history")]
    lines = ["## Against published numbers", "",
             f"Published rows: {SOURCE}. Their protocol keeps no validation item, so genpas, which holds one more "
             "item out, trains on slightly less data; they train with a sampled softmax over 128 negatives, genpas "
             "with the loss its row names (the full softmax over the catalogue unless it says otherwise). genpas rows: "
             "this report's runs, each at the maximum length its row names, test metrics with the user's history "
             "excluded from the ranking as in the published protocol, mean ± std over seeds (the seeds and devices "
             "are in each model's section below), or one run's figures (its seed in the row; a single run's directory "
             "in the Single runs table)."
             + (f" Not comparable: {', '.join(kept)} ranked with the history kept (rerun with exclude_history: true)."
                if kept else "")
             + (f" {left_out} single run(s) of other data or ranked with the history kept are not listed here."
                if left_out else ""), "",
             "| model | source | HR@10 (recall@10) | NDCG@10 | with the history kept: HR@10 | NDCG@10 |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {name} | published | {hr:.4f} | {ndcg:.4f} | | |" for name, hr, ndcg in rows]
    for result in results:
        model = MODEL_NAMES.get(result["config"]["model"], result["config"]["model"])
        for row in result["strategies"].values():
            if row["label"] != "Popularity":
                both = row.get("test_history_kept")  # runs ranked without the history also report it kept
                beside = f"{_ms(both['recall@10'])} | {_ms(both['ndcg@10'])}" if both else " | "
                lines.append(f"| {model}, {row['label']} | genpas, {_runs(result['seeds'], result['config'])} | "
                             f"{_ms(row['test']['recall@10'])} | {_ms(row['test']['ndcg@10'])} | {beside} |")
    for r in shown:
        beside = f"{r['kept'][0]:.4f} | {r['kept'][1]:.4f}" if r["kept"] else " | "
        lines.append(f"| {MODEL_NAMES.get(r['model'], r['model'])}, {r['label']} | genpas, "
                     f"{_runs([r['seed']], r)} | {r['test'][0]:.4f} | {r['test'][1]:.4f} | {beside} |")
    return lines + [""]


def _runs(seeds: list, cfg: dict) -> str:
    """'3 seeds, length 200, full softmax' or '1 run (seed 0, length 20), ...': what a genpas row averages, at which
    maximum length, with which loss (TIGER generates codes: its loss is over the codes, named so)."""
    negatives = int(cfg.get("negatives") or 0)
    loss = ("softmax over the semantic-id codes" if cfg.get("model") == "tiger" else
            f"sampled softmax, {negatives} negatives" if negatives else "full softmax")
    if len(seeds) == 1:
        return f"1 run (seed {seeds[0]}, length {cfg['max_len']}), {loss}"
    return f"{len(seeds)} seeds, length {cfg['max_len']}, {loss}"
