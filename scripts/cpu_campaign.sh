#!/usr/bin/env bash
# The ML-1M campaign on a CPU machine, across sessions: LANES processes (one thread each) work through one queue of
# experiments that share the run store docs/results/ml-1m. Every command skips finished runs, resumes started ones,
# claims the run it trains, and leaves the runs another lane holds (--no-wait), so no lane idles while another trains;
# whichever lane finishes a command's last run writes that command's results. A lane repeats the queue until every
# command has written its results, then stops.
#
#   scripts/cpu_campaign.sh start [LANES]   start the lanes 1..LANES (default 2) not running yet, in the background;
#                                           logs in $LOGS
#   scripts/cpu_campaign.sh queue           the queue's commands, one a line
#   scripts/cpu_campaign.sh plan            each command's runs: finished, running, started (resumable), pending
#   scripts/cpu_campaign.sh stop            stop the lanes (a run resumes from its last finished epoch), then park the
#                                           unfinished runs' checkpoints in git's index (scripts/park_runs.sh)
#
# The queue, in order of what the ML-1M issue needs first:
#   1. the search (SASRec, top 3 settings and the three baselines, seed 0), pruning hopeless GenPAS settings (--prune:
#      a pruned run stays resumable; docs/method.md "Pruning a search"). The baselines train to convergence: SW, which
#      a search of an earlier rule pruned at epoch 132, resumes here, and search.json is written again when it ends;
#   2. the long-tail table of LT, MT and the pick over seeds 0 and 1 (needs the search's search.json: skipped until
#      it exists): the runs of the search and of the pick against MT, and LT's seed 1 (LT ends within about 30
#      epochs);
#   3. SASRec MT and the pick over seeds 0, 1 and 2 (the protocol's 3 seeds; the verdict needs them, so they come
#      before TIGER's second seed), at most MAX_EPOCHS epochs (default 400), so that validation patience, not the
#      cap, ends every run: at the config's 200, MT's seed 2 was still setting bests at epoch 198. The runs patience
#      ended under 200 are these runs (the store reuses them), and MT's seed 2 continues from its epoch 200 (docs/
#      method.md "Continuing a capped run"); the 200-epoch table stays committed until this one replaces it;
#   3b. the anchor of the published SASRec row: SASRec-MT, seed 0, with the published loss (a sampled softmax over
#      128 uniform negatives, configs/sasrec-ml1m-sampled.yaml), in its own directory $SAMPLED (its strategies.json
#      is then no rival of command 3's), under the same MAX_EPOCHS; the report lists its run beside the published
#      rows;
#   4. TIGER MT and the pick over seeds 0 and 1, at most TIGER_EPOCHS epochs (default 40) with patience
#      TIGER_PATIENCE (default 5): on this CPU a TIGER epoch is tens of minutes, so the bound is stated in the runs'
#      configurations and in the report; both strategies get the same bound (equal compute). Seed 0 of both ran to
#      an earlier bound of 20 epochs, still rising: the run store continues those runs from their epoch 20 rather
#      than training them again (docs/method.md "Continuing a capped run"), and their 20-epoch table stays
#      committed until this command's table replaces it;
#   5. HSTU MT and the pick over seeds 0 and 1, at the config's bound of 200 epochs (MT's seed 0 is finished there,
#      best at epoch 177, 22 epochs without gain; its checkpoint was not kept, so a higher bound would train it again
#      from scratch: about 7 hours a run on one thread here).
#   6. the data-efficiency table of SASRec on ML-1M (the pick against MT trained on 1 %, 5 %, 10 %, 20 % and 100 %
#      of MT's pairs, at equal steps per epoch; seed 0, 10 runs of a few hours each): last, as no bar of the
#      issue needs it.
# With LEADER=ALPHA,BETA,GAMMA set (the setting leading the search so far, e.g. LEADER=0,1,1), a command after the
# search trains MT and that setting over seeds 0 and 1 before the search has picked: its seed 0 is the search's own
# run, so only seed 1 is new, and if the search picks that setting, command 3 finds those runs finished. The command
# leaves the queue once the search has picked (so its table never overwrites command 3's); if another setting
# overtakes the leader, command 3 trains the pick, and the leader's runs stay in the run store. LEADER reaches the
# lanes a start starts; running lanes keep the queue they started with (stop, then start, to change it).
# TIGER needs the `text` extra (pip install -e '.[text]') for its semantic ids from the items' titles and genres.
set -uo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
ROOT=$(git -C "$(dirname "$SELF")" rev-parse --show-toplevel) && cd "$ROOT" || { echo "run this inside the genpas repository" >&2; exit 2; }
E=docs/results/ml-1m
LOGS=${LOGS:-/tmp/genpas-campaign}
PICK=$E/search.json
SAMPLED=docs/results/ml-1m-sampled
TIGER_BOUND=(--epochs "${TIGER_EPOCHS:-40}" --patience "${TIGER_PATIENCE:-5}")
CONVERGE=(--epochs "${MAX_EPOCHS:-400}")  # high enough that validation patience ends SASRec's runs
SHARED=(--out "$E" --share --no-wait --no-progress)

queue() {  # one command per line, its words tab-separated
    printf '%s\t' search --config configs/sasrec-ml1m.yaml --top-k 3 --seed 0 --prune --out "$E" --no-wait \
        --no-progress
    echo
    if [ -n "${LEADER:-}" ] && [ ! -f "$PICK" ]; then  # the search's leading setting, while the search finishes
        printf '%s\t' experiment strategies --config configs/sasrec-ml1m.yaml --strategies mt,genpas --genpas "$LEADER" \
            --seeds 0,1 "${SHARED[@]}"
        echo
    fi
    printf '%s\t' experiment long-tail --config configs/sasrec-ml1m.yaml --search "$PICK" --seeds 0,1 "${SHARED[@]}"
    echo
    printf '%s\t' experiment strategies --config configs/sasrec-ml1m.yaml --strategies mt,genpas --search "$PICK" \
        --seeds 0,1,2 "${CONVERGE[@]}" "${SHARED[@]}"
    echo
    printf '%s\t' experiment strategies --config configs/sasrec-ml1m-sampled.yaml --strategies mt --seeds 0 \
        "${CONVERGE[@]}" --out "$SAMPLED" --share --no-wait --no-progress
    echo
    printf '%s\t' experiment strategies --config configs/tiger-ml1m.yaml --strategies mt,genpas --search "$PICK" \
        --seeds 0,1 "${TIGER_BOUND[@]}" "${SHARED[@]}"
    echo
    printf '%s\t' experiment strategies --config configs/hstu-ml1m.yaml --strategies mt,genpas --search "$PICK" \
        --seeds 0,1 "${SHARED[@]}"
    echo
    printf '%s\t' experiment data-efficiency --config configs/sasrec-ml1m.yaml --search "$PICK" --seeds 0 "${SHARED[@]}"
    echo
}

lane() {  # repeat the queue until every command has written its results (or failed twice in a row)
    local -A failures=()  # by the command's words: the queue changes once the search has picked (LEADER)
    while true; do
        local pending=0
        while IFS=$'\t' read -r -a cmd; do
            [ "${#cmd[@]}" -gt 0 ] || continue
            local key="${cmd[*]}"
            [ "${failures[$key]:-0}" -ge 2 ] && continue  # given up: its error is in the log
            if [[ " ${cmd[*]} " == *" $PICK "* ]] && [ ! -f "$PICK" ]; then
                pending=1  # waits for the search's pick
                continue
            fi
            echo "== $(date -u +%FT%TZ) genpas ${cmd[*]}"
            out=$(set -o pipefail; OMP_NUM_THREADS=1 genpas "${cmd[@]}" 2>&1 | tee -a /dev/stderr)  # logged as it comes
            rc=$?
            if [ "$rc" -ne 0 ]; then
                failures[$key]=$((${failures[$key]:-0} + 1))
                [ "${failures[$key]}" -ge 2 ] && echo "== giving up on genpas ${cmd[*]}: it failed twice in a row (exit $rc)"
                [ "${failures[$key]}" -lt 2 ] && pending=1
            else
                failures[$key]=0
                grep -qE '^(wrote |unchanged: )' <<< "$out" || pending=1  # runs left to other lanes
            fi
        done < <(queue)
        if [ "$pending" -eq 0 ]; then
            echo "== $(date -u +%FT%TZ) every command has written its results or been given up"
            return 0
        fi
        sleep "${PAUSE:-300}"  # what is left is held by other lanes, or waits for the search
    done
}

case "${1:-}" in
start)
    lanes=${2:-2}
    [[ "$lanes" =~ ^[1-9][0-9]*$ ]] || { echo "LANES must be a positive whole number, got '$lanes'" >&2; exit 2; }
    [ -z "${LEADER:-}" ] || [[ "$LEADER" =~ ^[^,[:space:]]+,[^,[:space:]]+,[^,[:space:]]+$ ]] \
        || { echo "LEADER must be ALPHA,BETA,GAMMA (e.g. 0,1,1), got '$LEADER'" >&2; exit 2; }
    command -v genpas > /dev/null || { echo "genpas is not on PATH: activate the environment (. .venv/bin/activate)" >&2; exit 2; }
    mkdir -p "$LOGS"
    for i in $(seq 1 "$lanes"); do
        if [ -f "$LOGS/lane-$i.pid" ] && kill -0 -- "-$(cat "$LOGS/lane-$i.pid")" 2> /dev/null; then
            echo "lane $i: running already (with the queue it started with)"
            continue
        fi
        setsid bash "$SELF" lane >> "$LOGS/lane-$i.log" 2>&1 < /dev/null &
        echo $! > "$LOGS/lane-$i.pid"
        echo "lane $i: pid $!, log $LOGS/lane-$i.log"
        sleep 20  # the lanes claim their first runs one after the other
    done
    ;;
lane)
    lane
    ;;
queue)
    queue | sed 's/\t$//; s/\t/ /g; s/^/genpas /'
    ;;
plan)
    while IFS=$'\t' read -r -a cmd; do
        [ "${#cmd[@]}" -gt 0 ] || continue
        args=()
        for word in "${cmd[@]}"; do case "$word" in --share|--no-wait|--no-progress) ;; *) args+=("$word") ;; esac; done
        echo "== genpas ${args[*]} --plan"
        genpas "${args[@]}" --plan 2>&1 | tail -n 8
    done < <(queue)
    ;;
stop)
    for pidfile in "$LOGS"/lane-*.pid; do
        [ -f "$pidfile" ] || continue
        kill -TERM -- "-$(cat "$pidfile")" 2> /dev/null && echo "stopped $(basename "$pidfile" .pid)"
        rm -f "$pidfile"
    done
    sleep 5
    parked=()
    for dir in "$E" "$SAMPLED"; do [ -d "$dir/runs" ] && parked+=("$dir"); done
    bash scripts/park_runs.sh "${parked[@]}"
    ;;
*)
    awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$SELF"
    exit 2
    ;;
esac
