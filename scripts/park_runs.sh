#!/usr/bin/env bash
# Keep a long campaign resumable on another machine through git.
#
#   scripts/park_runs.sh [DIR ...]     (default: docs/results/ml-1m)
#
# Checkpoints are ignored by git (.gitignore), so a campaign that spans sessions on fresh machines would restart every
# unfinished run from scratch. This adds the checkpoints (last.pt, best.safetensors) of each run directory under
# DIR/runs that has no metrics.json yet to the index, beside its config.yaml and log.csv. Of a finished run it keeps
# the best weights (best.safetensors, a few MB: what `genpas evaluate`, `recommend` and `compare` read) with its
# metrics.json and its users' ranks (ranks.npz, which `compare` and the experiments pair), and takes last.pt (the
# optimizer's state, needed only to resume) out of the index again (the file stays on disk), unless the run's epoch
# cap ended it (metrics.json: stopped_by "epochs", no cosine schedule): a run store asked for the same run with a
# higher cap continues it from that last.pt (docs/method.md "Continuing a capped run"), so it stays in the index.
# Stop the training processes first, so that a checkpoint and
# its log.csv are of the same epoch, then commit. A search or experiment run again resumes each run from its last.pt.
# A run a search pruned (DIR/pruned.jsonl, `genpas search --prune`) has no metrics.json either: it stays parked, so
# that an experiment or a search without --prune can still resume it elsewhere.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
for dir in "${@:-docs/results/ml-1m}"; do
    [ -d "$dir/runs" ] || { echo "$dir/runs: no such directory" >&2; exit 2; }
    for run in "$dir"/runs/*/; do
        run=${run%/}
        if [ -f "$run/metrics.json" ]; then
            if [ -f "$run/last.pt" ] && grep -q '"stopped_by": "epochs"' "$run/metrics.json" \
                && ! grep -q '"cosine": true' "$run/metrics.json"; then
                git add -f "$run/last.pt"  # ended by its epoch cap: a run store continues it to a higher cap
                echo "kept $run/last.pt (ended by its epoch cap)"
            else
                git rm -q --cached --ignore-unmatch "$run/last.pt"
            fi
            if [ -f "$run/best.safetensors" ]; then git add -f "$run/best.safetensors" "$run/metrics.json"; fi
            if [ -f "$run/ranks.npz" ]; then git add -f "$run/ranks.npz"; fi
        elif [ -f "$run/last.pt" ] && [ -f "$run/best.safetensors" ]; then
            git add -f "$run/last.pt" "$run/best.safetensors" "$run/config.yaml" "$run/log.csv"
            if [ -f "$run/continued.json" ]; then git add -f "$run/continued.json"; fi  # the run it continues
            echo "parked $run at epoch $(tail -n 1 "$run/log.csv" | cut -d, -f1)"
        fi
    done
done
