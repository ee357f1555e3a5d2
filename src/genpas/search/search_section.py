"""The results report's parts that read a search.json (`genpas experiment report --search`): the search's table,
whether the report's experiments train its pick, and where one of their runs is the search's own run of the pick
(whose validation figure was selected, not only measured)."""

from __future__ import annotations


def search_section(result: dict, used: set) -> list[str]:
    """The search's table, and whether the experiments (GenPAS settings `used`) train its pick."""
    from genpas.search.trained import format_search

    cfg = result["config"]
    budget = cfg.get("time_budget_minutes")
    protocol = (f"{budget:g} training minutes per setting" if budget else f"at most {cfg['epochs']} epochs") + \
        f", patience {cfg['patience']}"
    return ["## Parameter search", "",
            f"`genpas search` on {result['data']} (seed {result['seed']}): {len(result['screened'])} settings "
            f"screened without training in {result['screen_seconds']:.1f} s; {len(result['trained'])} of them trained, "
            f"and the baselines {_names(result.get('baselines', {})) or 'none'}, under "
            f"the search's own protocol ({protocol}). {pick_sentence(result, used)}",
            "", "```", format_search(result), "```", ""]


def pick_sentence(search: dict, used: set) -> str:
    """Whether the experiments of the report train the search's pick (`used`: their GenPAS settings)."""
    from genpas.augment.strategy import genpas

    trained = ", ".join(sorted(genpas(*s).label for s in used))
    best = search["best"]
    if best.get("strategy", "genpas") != "genpas":
        return (f"It picked {str(best['strategy']).upper()}, a baseline: no GenPAS setting it trained beat it on "
                f"validation" + (f"; the experiments below train {trained}." if used else "."))
    pick = tuple(float(best[k]) for k in ("alpha", "beta", "gamma"))
    if not used or used == {pick}:
        return "The experiments below use its pick under their own protocol."
    if pick in used:
        return f"The experiments below that train {genpas(*pick).label} use its pick; the others train other settings."
    return f"The experiments below train {trained}, not its pick."


def selection_note(result: dict, search: dict | None) -> str | None:
    """Where a strategies result holds the search's own run of its pick (the same setting and seed, the same
    validation figure): that run's validation NDCG@10 was the best of the settings the search trained, so it is
    selected as well as measured. Says so, with the test and validation differences to MT over the other seeds
    alone."""
    rows = result["strategies"]
    if not search or search.get("best", {}).get("strategy") != "genpas" or "mt" not in rows or "genpas" not in rows:
        return None
    best, seeds = search["best"], result["seeds"]
    if search.get("seed") not in seeds or [float(x) for x in result["genpas"]] != [
            float(best[k]) for k in ("alpha", "beta", "gamma")]:
        return None
    i = seeds.index(search["seed"])
    if abs(rows["genpas"]["valid"]["ndcg@10"]["values"][i] - best["valid"]["ndcg@10"]) > 1e-12:
        return None  # another run of the setting (other options or data): not the search's
    others = [j for j in range(len(seeds)) if j != i]
    label = rows["genpas"]["label"]
    text = (f"The search picked {label} on seed {seeds[i]}'s validation NDCG@10, and seed {seeds[i]}'s {label} run "
            f"here is the search's own: its validation figure is the best of the settings the search trained, "
            f"selected as well as measured. Its test figure was not selected on, but it comes from the same model, so "
            f"it shares some of that run's luck.")
    if others:
        diffs = {split: _differences(rows, split, others) for split in ("test", "valid")}
        text += f" On the other seed{'s' * (len(others) > 1)} alone, GenPAS - MT: " + "; ".join(
            f"{split} NDCG@10 {sum(d) / len(d):+.4f} (" + ", ".join(
                f"seed {seeds[j]} {x:+.4f}" for j, x in zip(others, d)) + ")" for split, d in diffs.items()) + "."
    return text


def _differences(rows: dict, split: str, seeds_at: list) -> list[float]:
    genpas, mt = rows["genpas"][split]["ndcg@10"]["values"], rows["mt"][split]["ndcg@10"]["values"]
    return [genpas[j] - mt[j] for j in seeds_at]


def baseline_caution(search: dict) -> str | None:
    """Where the search's pruning or its epoch cap stopped a baseline before validation patience did: the strongest
    baseline is then not known."""
    baselines = search.get("baselines", {})
    pruned = {n: b for n, b in baselines.items() if b.get("stopped_by") == "pruned"}
    capped = {n: b for n, b in baselines.items() if b.get("stopped_by") == "epochs"}
    if not pruned and not capped:
        return None

    def best(b):
        return f"best validation NDCG@10 {b['valid']['ndcg@10']:.4f}, at epoch {b['best_epoch']}"

    why = []
    if pruned:
        why.append("its pruning stopped " + " and ".join(
            f"{str(n).upper()} at epoch {b['pruned']['epoch']} ({best(b)})" for n, b in pruned.items())
            + " because it could not reach the leading GenPAS setting, not because it had converged")
    if capped:
        why.append("its epoch cap ended " + " and ".join(
            f"{str(n).upper()} after {b.get('epochs_run', '?')} epochs ({best(b)})" for n, b in capped.items())
            + " before validation patience did")
    return (f"The search trained the baselines {_names(baselines)} on seed {search['seed']}; {'; '.join(why)}. "
            f"Whether a converged {_names({**pruned, **capped}, ' or ')} would be a stronger baseline than the one "
            f"compared here is not measured.")


def _names(strategies, joiner: str = ", ") -> str:
    """Strategy names as the report writes them (MT, SW, ...), joined."""
    return joiner.join(str(name).upper() for name in strategies)
