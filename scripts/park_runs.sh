#!/usr/bin/env bash
# Keep a long campaign resumable on another machine through git.
#
#   scripts/park_runs.sh [DIR ...]     (default: docs/results/ml-1m)
#
# Checkpoints are ignored by git (.gitignore), so a campaign that spans sessions on fresh machines would restart every
# unfinished run from scratch. This adds the checkpoints (last.pt, best.safetensors) of each run directory under
# DIR/runs that has no metrics.json yet to the index, beside its config.yaml and log.csv. Of a finished run it keeps
# the best weights (best.safetensors, a few MB: what `genpas evaluate`, `recommend` and `compare` read) with its
# metrics.json and its users' ranks (ranks.npz, which `compare` and the experiments pair), and takes last.pt (the optimizer's state, needed only to resume) out of the index again (the file
# stays on disk). Stop the training processes first, so that a checkpoint and
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
            git rm -q --cached --ignore-unmatch "$run/last.pt"
            if [ -f "$run/best.safetensors" ]; then git add -f "$run/best.safetensors" "$run/metrics.json"; fi
            if [ -f "$run/ranks.npz" ]; then git add -f "$run/ranks.npz"; fi
        elif [ -f "$run/last.pt" ] && [ -f "$run/best.safetensors" ]; then
            git add -f "$run/last.pt" "$run/best.safetensors" "$run/config.yaml" "$run/log.csv"
            echo "parked $run at epoch $(tail -n 1 "$run/log.csv" | cut -d, -f1)"
        fi
    done
done
