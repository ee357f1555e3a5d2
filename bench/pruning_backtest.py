"""How safe, and how useful, the search's pruning rule (`genpas search --prune`, genpas.search.pruning) is, measured
on every training log committed under docs/results: no training is run.

    python bench/pruning_backtest.py [--root docs/results]

Two figures per rule:
- Safety. A run is underestimated where, at some epoch the rule applies, its reach fell below the run's own final
  best validation NDCG@10: a leader between the two would have stopped a run that was going to beat it. The rule is
  meant to underestimate none.
- Use. Runs of one directory and one protocol (model, data, length, epochs, patience, mode, seed) stand for one
  search: each run is checked against the best final score of the others (the leader it would have met, as the
  rule sees it only once that run has finished), and the epochs the rule would have saved are counted.
Rules: the library's (trend steepened by F, the noise of the best of the validations left, relative margin M) at
several F and M, and the first rule tried, which extrapolates the best score's gain over the last window (no noise
term). Writes bench/results/pruning_backtest.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

from genpas.search.pruning import FACTOR, MARGIN, reach  # noqa: E402
from genpas.search.run_logs import validation_curve  # noqa: E402

PROTOCOL = ("model", "data", "max_len", "epochs", "patience", "mode", "seed")


def finished_runs(root: Path) -> dict[tuple, list[tuple[str, list[float], int, int]]]:
    """{(directory, protocol...): [(run, validation scores, epochs, patience)]} of every finished, trained run."""
    groups: dict[tuple, list] = {}
    for ledger in sorted(root.rglob("ledger.jsonl")):
        for line in ledger.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            cfg = record.get("config", {})
            log = ledger.parent / "runs" / str(record.get("name")) / "log.csv"
            if cfg.get("model") == "pop" or not log.exists():
                continue
            scores = [score for _, score in validation_curve(log)]
            if len(scores) >= 2:
                group = (str(ledger.parent.relative_to(root)), *(cfg.get(k) for k in PROTOCOL))
                groups.setdefault(group, []).append((record["name"], scores, cfg["epochs"], cfg["patience"]))
    return groups


def best_gain_rule(factor: float):
    """The first rule tried: the best score's gain over the last window, carried on `factor` times as fast."""
    def rule(scores, epochs, window):
        e = len(scores) - 1
        if e < window or e + 1 >= epochs:
            return None
        best, before = max(scores), max(scores[: e - window + 1])
        return None if best <= before else best + factor * (best - before) * (epochs - 1 - e) / window
    return rule


def library_rule(factor: float, margin: float):
    return lambda scores, epochs, window: reach(scores, epochs, window, factor, margin)


def first_stop(rule, scores, epochs, window, leader: float) -> int | None:
    """The epoch after which the rule stops a run against `leader`, or None."""
    for e in range(1, len(scores) + 1):
        most = rule(scores[:e], epochs, window)
        if most is not None and most < leader:
            return e - 1
    return None


def backtest(rule, groups) -> dict:
    runs = [run for group in groups.values() for run in group]
    under = [{"run": name, "epoch": stop, "final_best": max(scores)} for name, scores, epochs, window in runs
             if (stop := first_stop(rule, scores, epochs, window, max(scores))) is not None]
    checked = stopped = wrong = saved = total = 0
    for group in groups.values():
        for i, (name, scores, epochs, window) in enumerate(group):
            if len(group) < 2:
                continue
            leader = max(max(other[1]) for j, other in enumerate(group) if j != i)
            checked += 1
            total += len(scores)
            stop = first_stop(rule, scores, epochs, window, leader)
            if stop is not None:
                stopped += 1
                saved += len(scores) - 1 - stop
                wrong += max(scores) > leader
    return {"runs": len(runs), "underestimated": len(under), "underestimated_runs": under[:10],
            "runs_in_searches": checked, "stopped": stopped, "stopped_wrongly": wrong, "epochs_saved": saved,
            "epochs_run": total, "share_saved": saved / total if total else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("docs/results"))
    parser.add_argument("--quick", action="store_true", help="Accepted for bench/run_all.py: the replay is seconds.")
    args = parser.parse_args()
    groups = finished_runs(args.root)
    rules = {f"library F={FACTOR:g} M={MARGIN:g} (default)": library_rule(FACTOR, MARGIN),
             f"library F={FACTOR:g} M=0.02": library_rule(FACTOR, 0.02),
             f"library F={FACTOR:g} M=0": library_rule(FACTOR, 0.0),
             f"library F=1 M={MARGIN:g}": library_rule(1.0, MARGIN),
             "best-gain F=2 (first tried)": best_gain_rule(2.0),
             "best-gain F=4": best_gain_rule(4.0)}
    results = {}
    print(f"{'rule':34s}{'underestimated':>16s}{'stopped':>12s}{'wrongly':>9s}{'epochs saved':>20s}")
    for name, rule in rules.items():
        r = results[name] = backtest(rule, groups)
        print(f"{name:34s}{r['underestimated']:>9d} of {r['runs']:<4d}{r['stopped']:>6d} of {r['runs_in_searches']:<4d}"
              f"{r['stopped_wrongly']:>8d}{r['epochs_saved']:>8d} of {r['epochs_run']:<5d} ({r['share_saved']:.0%})")
        for u in r["underestimated_runs"][:3]:
            print(f"{'':6s}{u['run']} after epoch {u['epoch']} (final best {u['final_best']:.4f})")
    path = write_results("pruning_backtest", {"root": str(args.root), "groups": len(groups), "rules": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
