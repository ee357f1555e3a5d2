"""Markdown tables and the combined results report of the experiments (every number read from their JSON; the plots
are drawn by experiment_plots.py).

`write_results_report` assembles docs/results-<data>.md from an experiment directory (and optionally a search.json):
no number in it is typed by hand, each table says which command and seeds produced it and how long that took.
"""

from __future__ import annotations

from pathlib import Path

from genpas.atomic import write_text
from genpas.errors import GenpasError
from genpas.search.experiment_plots import TITLES, curves_figure, experiment_figure
from genpas.search.experiments import MIN_SEEDS, chance_beyond, paired_verdict
from genpas.search.models_report import MODEL_NAMES, models_section
from genpas.search.models_report import mean_std as _ms
from genpas.search.provenance import capped_note, precision_text, provenance
from genpas.search.published import published_section, single_run
from genpas.search.quality_steps import quality_sentence, quality_steps
from genpas.search.report import save_figure
from genpas.search.result_files import json_object, load_results, load_search
from genpas.search.screening_study import screening_summary, screening_table
from genpas.search.search_section import baseline_caution, search_section, selection_note
from genpas.train.metrics import GROUP_NAMES

KEYS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")
SPREAD = "Each cell: the mean over the seeds ± their standard deviation (one seed: its figure)."


def _se(x: float) -> str:
    """A standard error with 4 decimals, or 2 significant digits below 0.0001 (never a bare 0.0000)."""
    return f"{x:.4f}" if x >= 1e-4 or x == 0 else f"{x:.1e}"


def verdict_sentence(v: dict, metric: str, split: str, baseline: str = "MT") -> str:
    if v["verdict"] == "single seed":
        return (f"{split} {metric}: GenPAS - {baseline} = {v['mean_difference']:+.4f} (one seed, no spread to "
                f"compare with).")
    rel = f" ({100 * v['relative']:+.1f}% of {baseline})" if v["relative"] is not None else ""
    if v["verdict"] == "too few seeds":
        return (f"{split} {metric}: GenPAS - {baseline} = {v['mean_difference']:+.4f}{rel}, standard error of the "
                f"paired difference {_se(v['standard_error'])}: **no verdict** (fewer seeds than the {MIN_SEEDS} a "
                f"verdict needs: a standard error from so few differences is itself too uncertain).")
    word = {"win": "GenPAS wins", "loss": "GenPAS loses", "tie": "tie"}[v["verdict"]]
    text = (f"{split} {metric}: GenPAS - {baseline} = {v['mean_difference']:+.4f}{rel}, standard error of the paired "
            f"difference {_se(v['standard_error'])}: **{word}** (win/loss means beyond two standard errors")
    n = v.get("seeds")
    if v["verdict"] == "tie" or n is None:
        return text + ")."
    return text + (f"; with {n} seeds, {100 * chance_beyond(2.0, n - 1):.0f} % of comparisons of two equal "
                   f"strategies get that far by chance: Student's t, {n - 1} degree{'s' * (n != 2)} of freedom).")


def _verdict(result: dict, base: str, split: str, metric: str, by_split: dict) -> dict:
    """GenPAS against `base` on split/metric, judged again from the per-seed values under today's rule (a result file
    written under an earlier rule keeps its old verdict), else as the file has it."""
    rows = result["strategies"]
    try:
        return paired_verdict(rows["genpas"][split][metric]["values"], rows[base][split][metric]["values"])
    except (KeyError, TypeError, ValueError):
        return by_split[split][metric]


def experiment_markdown(result: dict, image: str | None = None, heading: str = "#") -> str:
    kind = result["experiment"]
    model = result["config"].get("model", "sasrec")
    title = TITLES[kind] + ("" if model == "sasrec" else f" ({MODEL_NAMES.get(model, model)})")
    lines = [f"{heading} {title} on {result['data']}", "", provenance(result), ""]
    lines += TABLES[kind](result)
    if image:
        lines += ["", f"![{TITLES[kind]}]({image})"]
    return "\n".join(lines) + "\n"


def _strategies_table(result: dict) -> list[str]:
    lines = [SPREAD, "",
             "| strategy | " + " | ".join(f"valid {k}" for k in ("ndcg@10",)) + " | "
             + " | ".join(f"test {k}" for k in KEYS) + " | best epoch of each seed, from 0 (ended by) | train s |",
             "|---" * 8 + "|"]
    for row in result["strategies"].values():
        lines.append(f"| {row['label']} | {_ms(row['valid']['ndcg@10'])} | "
                     + " | ".join(_ms(row["test"][k]) for k in KEYS)
                     + f" | {_best_epochs(row)} | {row['train_seconds']['mean']:.0f} |")
    lines += [""] + _compute_table(result)
    versus = result.get("genpas_vs") or ({"mt": result["genpas_vs_mt"]} if "genpas_vs_mt" in result else {})
    if versus:
        lines.append("")
        labels = {name: row["label"] for name, row in result["strategies"].items()}
        for base, by_split in versus.items():
            for split in ("test", "valid"):  # test decides; validation is what runs stopped and a search picked on
                for metric in ("ndcg@10", "recall@10"):
                    lines.append("- " + verdict_sentence(_verdict(result, base, split, metric, by_split),
                                                         metric, split, labels[base]))
        for base, seeds in result.get("genpas_vs_by_user", {}).items():
            lines.append("- " + by_user_sentence(seeds, labels[base], result["seeds"]))
        lines += ["- " + quality_sentence(found, labels[base]) for base in versus
                  if (found := _quality(result, base)) is not None]
    if (capped := capped_note(result)) is not None:  # in every model's section, compared or not
        lines += ([] if versus else [""]) + ["- " + capped]
    return lines


def _quality(result: dict, base: str) -> dict | None:
    """GenPAS's steps to the baseline's validation quality as the file has them, or from its curves (files written
    before the file kept them); None for a file whose runs keep no curves."""
    found = result.get("genpas_quality_steps", {}).get(base)
    if found is not None:
        return found
    curves = [result["strategies"][name].get("curves") for name in ("genpas", base)]
    if any(c is None or len(c) != len(result["seeds"]) for c in curves):
        return None
    return quality_steps(*curves, result["seeds"])


def _best_epochs(row: dict) -> str:
    """'31, 40 (patience)': each seed's best epoch and why its training ended (converged on validation patience, the
    time budget, the epoch cap); nothing for an untrained model."""
    epochs = ", ".join(str(e) for e in row["best_epoch"])
    ended = [e for e in row.get("stopped_by", []) if e]
    if not ended:
        return epochs
    return f"{epochs} ({ended[0] if len(set(ended)) == 1 else ', '.join(ended)})"


def _compute_table(result: dict) -> list[str]:
    """What each strategy trained on (mean over seeds): the equal-compute evidence."""
    rows = [r for r in result["strategies"].values() if r.get("compute") and r["compute"]["optimizer_steps"]["mean"]]
    if not rows:
        return []
    lines = ["Compute: optimizer steps of each seed's run, then means over the seeds of the steps up to the best "
             "epoch, the rows (windows or pairs), the targets with positive weight and the effective targets, and "
             "each run's training seconds. An epoch is the same number of steps for every strategy.", "",
             "| strategy | steps per epoch | steps of each run | mean steps to best | rows | targets | effective targets "
             "| effective targets per row | train s of each run |", "|---" * 9 + "|"]
    for r in rows:
        c = r["compute"]
        per_row = c["effective_targets"]["mean"] / max(1.0, c["train_rows"]["mean"])
        epochs = [len(curve) for curve in r.get("curves", [])]
        per_epoch = (", ".join(sorted({f"{s / e:,.0f}" for s, e in zip(c["optimizer_steps"]["values"], epochs) if e}))
                     or "n/a")
        steps = ", ".join(f"{v:,.0f}" for v in c["optimizer_steps"]["values"])
        seconds = ", ".join(f"{v:,.0f}" for v in r.get("train_seconds", {}).get("values", [])) or "n/a"
        lines.append(f"| {r['label']} | {per_epoch} | {steps} | "
                     f"{c['at_best']['optimizer_steps']['mean']:,.0f} | {c['train_rows']['mean']:,.0f} | "
                     f"{c['train_targets']['mean']:,.0f} | {c['effective_targets']['mean']:,.0f} | {per_row:.1f} | "
                     f"{seconds} |")
    return lines


def _long_tail_table(result: dict) -> list[str]:
    lines = ["| strategy | " + " | ".join(f"{g} ndcg@10 | {g} recall@10" for g in GROUP_NAMES) + " |",
             "|---" * (1 + 2 * len(GROUP_NAMES)) + "|"]
    for row in result["strategies"].values():
        lines.append(f"| {row['label']} | " + " | ".join(
            f"{_ms(row['groups'][g]['ndcg@10'])} | {_ms(row['groups'][g]['recall@10'])}" for g in GROUP_NAMES) + " |")
    rows = result["strategies"]
    paired = "genpas" in rows and "mt" in rows and len(result["seeds"]) > 1
    if paired:  # the difference that matters, paired by seed as the strategies table judges it
        lines.append("| GenPAS - MT, paired by seed (± standard error) | " + " | ".join(
            _paired_cell(rows, g, k) for g in GROUP_NAMES for k in ("ndcg@10", "recall@10")) + " |")
    first = next(iter(rows.values()))
    users = ", ".join(f"{g} {first['groups'][g]['users']}" for g in GROUP_NAMES)
    lines += ["", f"Test users per group of their target item (items cut into popularity thirds by training count): "
                  f"{users}. " + SPREAD + (" The last row: the mean of the per-seed differences ± their standard "
                                          "error, no verdict below 3 seeds; a group of few users moves with a handful "
                                          "of them." if paired else "")]
    return lines


def _paired_cell(rows: dict, group: str, metric: str) -> str:
    v = paired_verdict(rows["genpas"]["groups"][group][metric]["values"], rows["mt"]["groups"][group][metric]["values"])
    return f"{v['mean_difference']:+.4f} ± {_se(v['standard_error'])}"


def _data_efficiency_table(result: dict) -> list[str]:
    names = list(result["labels"])
    lines = ["| share of MT pairs | pairs | " + " | ".join(f"{result['labels'][n]} valid ndcg@10 | "
                                                        f"{result['labels'][n]} test ndcg@10" for n in names) + " |",
             "|---" * (2 + 2 * len(names)) + "|"]
    for row in result["rows"]:
        lines.append(f"| {100 * row['fraction']:g}% | {row['num_pairs']:,} | " + " | ".join(
            f"{_ms(row[n]['valid']['ndcg@10'])} | {_ms(row[n]['test']['ndcg@10'])}" for n in names) + " |")
    lines += ["", f"Each run draws its set of pairs once from its strategy; every epoch keeps the MT size and cycles "
                  f"through the set (`--budget-pairs`), so all shares get the same compute and only the data shrinks. "
                  f"The MT pair count of the training part is {result['mt_pair_count']:,}."]
    return lines


def _model_size_table(result: dict) -> list[str]:
    names = list(result["labels"])
    lines = ["| width | layers | " + " | ".join(f"{result['labels'][n]} valid ndcg@10 | {result['labels'][n]} test "
                                              f"ndcg@10 | train s" for n in names) + " |",
             "|---" * (2 + 3 * len(names)) + "|"]
    for row in result["rows"]:
        lines.append(f"| {row['dim']} | {row['layers']} | " + " | ".join(
            f"{_ms(row[n]['valid']['ndcg@10'])} | {_ms(row[n]['test']['ndcg@10'])} | "
            f"{row[n]['train_seconds']['mean']:.0f}" for n in names) + " |")
    return lines


TABLES = {"strategies": _strategies_table, "long-tail": _long_tail_table,
          "data-efficiency": _data_efficiency_table, "model-size": _model_size_table,
          "screening": screening_table}


GENERATED = "Generated by `genpas experiment report`"  # the mark of a report: regenerating one replaces it


def is_report(path: Path) -> bool:
    """Whether `path` holds a report this command wrote (so regenerating may replace it without --overwrite)."""
    try:
        head = Path(path).read_text(errors="replace")[:4000]
    except OSError:
        return False
    return head.startswith("# Results on ") and GENERATED in head


def figure_files(experiment_dir: Path, target: Path) -> list[Path]:
    """The plots a report written to `target` may draw: results/<its stem>/<experiment>[-curves].png beside it."""
    figures = Path(target).parent / "results" / Path(target).stem
    return [figures / f"{stem}{suffix}.png" for stem in load_results(Path(experiment_dir), TITLES, MODEL_NAMES)
            for suffix in ("", "-curves")]


def _figures(result: dict) -> tuple:
    """An experiment's headline figure and, for strategies, its validation curves (None without curves), drawn."""
    return experiment_figure(result), curves_figure(result) if result["experiment"] == "strategies" else None


def write_results_report(experiment_dir: Path, target: Path, search_json: Path | None = None,
                         command: str | None = None, runs: tuple[Path, ...] = ()) -> Path:
    """Assemble the report from DIR/<experiment>.json (those present), a search.json and single run directories
    (e.g. TIGER runs); the plots are drawn beside it."""
    experiment_dir, target = Path(experiment_dir), Path(target)
    results = load_results(experiment_dir, TITLES, MODEL_NAMES)  # file stem -> result: strategies, strategies-hstu
    if not results and search_json is None:
        raise GenpasError(f"{experiment_dir}: no experiment results (run `genpas experiment strategies` first)")
    figures = target.parent / "results" / target.stem
    # every file's section and plots are drawn before anything is written, so a damaged file writes nothing
    bodies = {stem: _drawn(experiment_dir / f"{stem}.json", lambda r, stem=stem: (experiment_markdown(
        r, str((figures / f"{stem}.png").relative_to(target.parent)), heading="##"), *_figures(r)), result)
        for stem, result in results.items()}
    search = load_search(search_json) if search_json else None
    if search is not None and results:  # a search of other data would put its pick beside these experiments
        ours = next(iter(results.values()))["data"]
        if Path(str(search["data"])).name != Path(str(ours)).name:
            raise GenpasError(f"{search_json}: a search of {search['data']}, while the experiments in "
                              f"{experiment_dir} are of {ours}; give the search.json of the same data")
    used = {tuple(float(x) for x in r["genpas"]) for r in results.values()  # the GenPAS settings trained
            if isinstance(r.get("genpas"), list) and ("genpas" in r.get("strategies", {}) or "strategies" not in r)}
    search_lines = _drawn(search_json, lambda s: search_section(s, used), search) if search_json else []
    run_lines = _runs_section(runs) if runs else []
    singles = [_drawn(path, single_run, json_object(path, "give a finished run"))  # present: checked above
               for path in (Path(run) / "metrics.json" for run in runs)]
    data = next(iter(results.values()))["data"] if results else "?"
    lines = [f"# Results on {data}", "",
             GENERATED + (f" (`{command}`)" if command else "")
             + " from the experiments' JSON files; no number here is typed by hand. Each section names the command "
               "that produced it, its seeds and its training time. Runs are bounded by epochs, so the metrics do not "
               "depend on the machine's load; the times are wall-clock as measured, and grow when other work shares "
               "the machine. Every strategy gets epochs of the same number of optimizer steps. A run stops on "
               "validation patience (each run to its own convergence) or at the epoch bound its section states, the "
               "same for every strategy; the tables' \"ended by\" says which.", ""]
    summary = _summary(results["strategies"], search) if "strategies" in results else []  # bullets, a blank line
    if "screening" in results:
        summary = ((summary[:-1] if summary else ["## Summary", ""])
                   + screening_summary(results["screening"], results.get("strategies")) + [""])
    lines += summary
    compared = [r for r in results.values() if r["experiment"] == "strategies"]
    lines += published_section(compared, singles)
    lines += models_section(compared)
    lines += search_lines
    for kind, (body, figure, curves_drawn) in bodies.items():
        save_figure(*figure, figures / f"{kind}.png")
        lines += [body]
        if curves_drawn is not None:
            save_figure(*curves_drawn, figures / f"{kind}-curves.png")
            lines += [f"![Validation curves]({(figures / f'{kind}-curves.png').relative_to(target.parent)})", ""]
    lines += run_lines
    write_text(target, "\n".join(lines))
    return target


def _runs_section(runs) -> list[str]:
    """One row per run directory (its metrics.json): model, strategy, metrics, and the semantic ids if any."""
    lines = ["## Single runs", "", "| run | model | strategy | valid ndcg@10 | test ndcg@10 | test recall@10 | best epoch "
             "| train s | semantic ids |", "|---" * 9 + "|"]
    seeds, seen = set(), set()
    for run in runs:
        if Path(run).resolve() in seen:  # the same directory, however spelled, would be a row twice
            raise GenpasError(f"--run {run} is given twice; give each run once")
        seen.add(Path(run).resolve())
        path = Path(run) / "metrics.json"
        if not path.exists():
            raise GenpasError(f"{path}: no such run result")
        line, seed = _drawn(path, lambda m, run=run: _run_row(run, m), json_object(path, "give a finished run"))
        lines.append(line)
        seeds.add(seed)
    return lines + ["", f"Seeds: {', '.join(map(str, sorted(seeds)))}; each run once, so its spread is not measured here.", ""]


def _run_row(run, m: dict) -> tuple[str, int]:
    ids = m.get("semantic_ids")
    described = (f"{ids['embeddings']}, {ids['levels']} x {ids['codebook_size']} codes, "
                 f"{ids['distinct_prefix_tuples']} distinct prefixes, largest de-dup code {ids['max_dedup_code']}"
                 if ids else "")
    cfg = m["config"]
    return (f"| `{run}` | {cfg['model']} ({cfg['dim']} wide, {cfg['layers']} layers, "
            f"{precision_text(cfg, [m['device']] if m.get('device') else (), [m.get('precision')])}) | "
            f"{m['strategy']['label']} | {m['valid']['ndcg@10']:.4f} | {m['test']['ndcg@10']:.4f} | "
            f"{m['test']['recall@10']:.4f} | {m['best_epoch']} | {m['train_seconds']:.0f} | {described} |",
            int(cfg["seed"]))


def _summary(result: dict, search: dict | None = None) -> list[str]:
    """The headline: test first (the comparison that decides: nothing was chosen on it), then validation (the split
    runs stop on and a search picks on, which favours what was picked), then what qualifies them."""
    rows = result["strategies"]
    if "genpas_vs_mt" not in result:
        return []
    baselines = [r for n, r in rows.items() if n in ("lt", "mt", "sw")]
    best_baseline = max(baselines, key=lambda r: r["valid"]["ndcg@10"]["mean"])
    which = "the best baseline on validation" if len(baselines) > 1 else "the one baseline trained over these seeds"
    g = rows["genpas"]
    lines = ["## Summary", "",
             f"- Over seeds {', '.join(str(s) for s in result['seeds'])}, {g['label']} has test NDCG@10 "
             f"{_ms(g['test']['ndcg@10'])} against {_ms(best_baseline['test']['ndcg@10'])} for {which} "
             f"({best_baseline['label']}), and valid NDCG@10 {_ms(g['valid']['ndcg@10'])} against "
             f"{_ms(best_baseline['valid']['ndcg@10'])} (mean ± standard deviation over the seeds)."]
    versus = result.get("genpas_vs") or {"mt": result["genpas_vs_mt"]}
    for base, by_split in versus.items():
        label = rows[base]["label"]
        test, valid = (verdict_sentence(_verdict(result, base, split, "ndcg@10", by_split), "NDCG@10", split, label)
                       for split in ("test", "valid"))
        lines.append("- **Test NDCG@10, the comparison that decides** (nothing was chosen on test): "
                     + test.removeprefix("test NDCG@10: "))
        lines.append("- Valid NDCG@10, the split the runs stop on and settings are chosen on (it favours what was "
                     "chosen, so it is no evidence by itself): " + valid.removeprefix("valid NDCG@10: "))
    for base, seeds in result.get("genpas_vs_by_user", {}).items():
        if any(s is not None for s in seeds):
            lines.append("- " + by_user_sentence(seeds, rows[base]["label"], result["seeds"]))
    if "mt" in versus and (found := _quality(result, "mt")) is not None:
        lines.append("- " + quality_sentence(found, rows["mt"]["label"]))
    if (note := selection_note(result, search)) is not None:
        lines.append("- " + note)
    if search is not None and (caution := baseline_caution(search)) is not None:
        lines.append("- " + caution)
    if (capped := capped_note(result)) is not None:
        lines.append("- " + capped)
    return lines + [""]


def by_user_sentence(seeds: list, baseline: str, seed_ids: list) -> str:
    """The per-seed user-level comparisons of a strategies result (experiments.by_user) as one sentence."""
    from genpas.train.paired import verdict

    def pair(d):
        return (f"{d['difference']:+.4f} ± {d['standard_error']:.4f} "
                f"({verdict(d['difference'], d['standard_error'], 'GenPAS', baseline)})")

    def one(s):
        valid = f", validation {pair(s['valid']['ndcg@10'])}" if "valid" in s else ""
        return f"seed {s['seed']} {'test ' if valid else ''}{pair(s['ndcg@10'])}{valid}"

    shown = "; ".join(one(s) for s in seeds if s is not None)
    missing = [str(i) for i, s in zip(seed_ids, seeds) if s is None]
    gap = (f"{'; ' if shown else ''}seed{'s' * (len(missing) != 1)} {', '.join(missing)}: not both runs keep "
           f"per-user ranks (a run finished before runs kept them)" if missing else "")
    split = ("test NDCG@10 (and validation NDCG@10 where both runs keep its ranks)"
             if any(s is not None and "valid" in s for s in seeds) else "test NDCG@10")
    return (f"User by user, {split}, GenPAS - {baseline} over the same users ± its standard error over the users "
            f"(how far the choice of evaluated users moves one seed's difference; the seeds' spread above is the "
            f"other half of a win): {shown}{gap}.")


def _drawn(path: Path, draw, result: dict):
    """draw(result), or one GenpasError naming the file whose fields it could not read."""
    try:
        return draw(result)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, StopIteration, ZeroDivisionError) as exc:
        raise GenpasError(f"{path}: a field is missing or malformed ({type(exc).__name__}: {exc}); rerun what wrote "
                          "it or move the file away") from None
