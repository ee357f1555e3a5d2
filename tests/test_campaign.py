"""Campaigns: an experiment's plan, and several processes sharing one experiment directory (search/campaign.py).

Another process is simulated by a raw flock on a second open file: flock locks of two open files conflict even within
one process (genpas' own locks are re-entrant, so they cannot stand in for a stranger)."""

from __future__ import annotations

import fcntl
import json
import threading
from contextlib import contextmanager

import pytest

from genpas.data.synth import SynthConfig, synthesize, write_table
from genpas.search import campaign
from genpas.search.experiments import ExperimentSettings, RunStore, run_strategies
from genpas.search.run_store import LeftToOthers
from genpas.train.config import TrainConfig

TINY = dict(dim=8, layers=1, heads=1, max_len=6, batch_size=32, warmup_steps=2, epochs=2, patience=1,
            progress=False)


@pytest.fixture
def settings(tmp_path):
    write_table(synthesize(SynthConfig(users=50, items=20, mean_length=8, seed=5)), tmp_path / "log.csv")
    return ExperimentSettings(TrainConfig(data=str(tmp_path / "log.csv"), **TINY), seeds=(0, 1))


def job(settings):
    return lambda store: run_strategies(settings, store, ("mt", "genpas"))


class Stranger:
    """Holds `path` locked as another process would, until released."""

    def __init__(self, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "w")
        fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self):
        if not self.fh.closed:
            self.fh.close()


@contextmanager
def released_before_waiting(store, key, stranger, check):
    """Let `store` run its first pass; when it comes to wait for `key`, run `check`, then release the stranger."""
    real = store.train

    def train(cfg, k, wait=True, prune=None):
        if k == key and wait:
            check()
            stranger.release()
        return real(cfg, k, wait, prune)

    store.train = train
    yield


def test_the_plan_lists_every_run_with_its_state_and_writes_nothing(settings, tmp_path):
    runs = campaign.plan(job(settings), RunStore(tmp_path / "exp"))
    assert [(r["name"], r["seed"]) for r in runs] == [("mt", 0), ("mt", 1), ("genpas", 0), ("genpas", 1)]
    assert {r["state"] for r in runs} == {"pending"} and not (tmp_path / "exp").exists()
    run_strategies(settings, RunStore(tmp_path / "exp"), ("mt",))
    planned = campaign.plan(job(settings), RunStore(tmp_path / "exp"))
    ledger = RunStore(tmp_path / "exp").ledger.done
    assert planned[0]["epochs"] == len(ledger[planned[0]["key"]]["curve"]) > 0  # progress read from the run's log
    assert planned[0]["best_valid_ndcg@10"] == max(v for _, v in ledger[planned[0]["key"]]["curve"])
    assert planned[2]["epochs"] == 0 and planned[2]["best_valid_ndcg@10"] is None
    states = {(r["name"], r["seed"]): r["state"] for r in planned}
    assert states == {("mt", 0): "finished", ("mt", 1): "finished", ("genpas", 0): "pending",
                      ("genpas", 1): "pending"}
    key = runs[2]["key"]
    stranger = Stranger(tmp_path / "exp" / "runs" / ".claims" / key)
    before = set((tmp_path / "exp").rglob("*"))
    assert campaign.plan(job(settings), RunStore(tmp_path / "exp"))[2]["state"] == "running"
    stranger.release()
    (tmp_path / "exp" / "runs" / key).mkdir()
    (tmp_path / "exp" / "runs" / key / "last.pt").write_bytes(b"")
    assert campaign.plan(job(settings), RunStore(tmp_path / "exp"))[2]["state"] == "started"
    made_here = {tmp_path / "exp" / "runs" / key, tmp_path / "exp" / "runs" / key / "last.pt"}
    assert set((tmp_path / "exp").rglob("*")) == before | made_here  # the plans added nothing


def test_a_worker_trains_the_free_runs_first_then_takes_over_a_dead_workers_run(settings, tmp_path):
    plain = run_strategies(settings, RunStore(tmp_path / "plain"), ("mt", "genpas"))
    store = RunStore(tmp_path / "shared")
    held = campaign.plan(job(settings), store)[1]["key"]
    stranger = Stranger(tmp_path / "shared" / "runs" / ".claims" / held)

    def first_pass_done():  # the three free runs are finished, the held one untouched
        assert len(RunStore(tmp_path / "shared").ledger.done) == 3
        assert not (tmp_path / "shared" / "runs" / held).exists()

    with released_before_waiting(store, held, stranger, first_pass_done):  # then its owner dies
        result = campaign.share(job(settings), store)
    assert len(store.ledger.done) == 4
    for name, row in plain["strategies"].items():  # who trained a run never changes its numbers
        assert result["strategies"][name]["valid"] == row["valid"] and result["strategies"][name]["test"] == row["test"]


def test_a_worker_that_does_not_wait_leaves_held_runs_and_the_last_one_writes_the_result(settings, tmp_path):
    """--no-wait: the free runs are trained, a run held throughout is left (LeftToOthers names it, no result is
    written); a run whose holder finished during the first pass is read back in the second; a worker that finds
    every run finished writes the result, the one a lone worker gets."""
    plain = run_strategies(settings, RunStore(tmp_path / "plain"), ("mt", "genpas"))
    store = RunStore(tmp_path / "shared")
    keys = [run["key"] for run in campaign.plan(job(settings), store)]
    stranger = Stranger(tmp_path / "shared" / "runs" / ".claims" / keys[1])
    with pytest.raises(LeftToOthers, match=keys[1]) as left:
        campaign.share(job(settings), store, wait=False)
    assert left.value.keys == [keys[1]] and set(store.ledger.done) == {keys[0], keys[2], keys[3]}
    assert not (tmp_path / "shared" / "strategies.json").exists()
    assert not (tmp_path / "shared" / "runs" / keys[1]).exists()

    store = RunStore(tmp_path / "again")
    stranger = Stranger(tmp_path / "again" / "runs" / ".claims" / keys[0])
    real = store.train

    def train(cfg, k, wait=True, prune=None):  # the holder of the first run lets go while this worker trains the last one
        if k == keys[3]:
            stranger.release()
        return real(cfg, k, wait, prune)

    store.train = train
    result = campaign.share(job(settings), store, wait=False)
    assert set(store.ledger.done) == set(keys)
    for name, row in plain["strategies"].items():
        assert result["strategies"][name]["valid"] == row["valid"] and result["strategies"][name]["test"] == row["test"]


def test_a_run_trained_outside_the_claims_is_never_disturbed(settings, tmp_path):
    store = RunStore(tmp_path / "exp")
    key = campaign.plan(job(settings), store)[0]["key"]
    run = tmp_path / "exp" / "runs" / key
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("a run of another process, still training\n")
    stranger = Stranger(run / ".lock")

    def untouched():
        assert (run / "config.yaml").exists()  # not emptied as a stale directory while its trainer holds it
        assert len(RunStore(tmp_path / "exp").ledger.done) == 3

    with released_before_waiting(store, key, stranger, untouched):
        campaign.share(job(settings), store)
    assert key in store.ledger.done


def test_cli_plan_and_share(settings, tmp_path, capsys):
    from genpas.cli import main

    def cli(*extra):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(["experiment", "strategies", "--data", settings.base.data, "--out", str(tmp_path / "exp"),
                  "--strategies", "mt", "--seeds", "0", "--epochs", "1", "--no-progress", *extra])
        return exc.value.code, capsys.readouterr()

    code, out = cli("--plan")
    assert code == 0 and "1 runs: 0 finished, 0 running, 0 started, 1 pending" in out.out
    assert not (tmp_path / "exp").exists()
    code, out = cli("--share")
    assert code == 0 and json.loads((tmp_path / "exp" / "strategies.json").read_text())["seeds"] == [0]
    code, out = cli("--plan")
    assert "1 runs: 1 finished" in out.out
    code, out = cli("--plan", "--share")
    assert code == 2 and "give only one of --plan and --share" in out.err
    code, out = cli("--no-wait")
    assert code == 2 and "--no-wait applies only with --share" in out.err
    (tmp_path / "exp" / "strategies.json").unlink()
    code, out = cli("--share", "--no-wait")  # every run finished: the result is written
    assert code == 0 and f"\nwrote {tmp_path / 'exp' / 'strategies.json'}, " in out.out
    code, out = cli("--share", "--no-wait")  # and written once: a rerun finds it unchanged
    assert code == 0 and f"\nunchanged: {tmp_path / 'exp' / 'strategies.json'} (every run" in out.out


def test_the_ledger_append_is_locked(tmp_path):
    from genpas.search.run_store import Ledger

    ledger = Ledger(tmp_path / "ledger.jsonl")
    stranger = Stranger(tmp_path / "ledger.jsonl")  # a writer on another machine mid-append

    done = threading.Event()
    writer = threading.Thread(target=lambda: (ledger.add({"name": "a"}), done.set()))
    writer.start()
    assert not done.wait(0.5)  # the append waits for the lock...
    stranger.release()
    writer.join(10)
    assert done.is_set() and Ledger(tmp_path / "ledger.jsonl").done == {"a": {"name": "a"}}  # ...then lands whole


def test_the_cpu_campaign_script_parses_queues_the_issues_order_and_refuses_bad_lanes():
    import subprocess
    from pathlib import Path

    script = Path(__file__).parents[1] / "scripts" / "cpu_campaign.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert usage.returncode == 2 and all(f"cpu_campaign.sh {a}" in usage.stdout for a in ("start", "plan", "stop"))
    clean = {"PATH": "/usr/bin:/bin"}  # no TIGER_EPOCHS, MAX_EPOCHS or LEADER from the caller's environment
    queue = subprocess.run(["bash", str(script), "queue"], capture_output=True, text=True, env=clean).stdout.splitlines()
    assert [line.split()[1] for line in queue] == ["search"] + ["experiment"] * 6
    assert [line.split()[2] for line in queue[1:]] == ["long-tail"] + ["strategies"] * 4 + ["data-efficiency"]
    assert "--seeds 0,1 " in queue[1] and "--seeds 0,1,2 " in queue[2]  # the protocol's 3 seeds before TIGER
    # SASRec's seeds and its anchor under a cap that patience, not the cap, reaches first
    assert all("--epochs 400 " in queue[k] for k in (2, 3)) and "--epochs" not in queue[1] + queue[5]
    outs = [line.split("--out ")[1].split()[0] for line in queue]
    writers = [out for line, out in zip(queue, outs) if "sasrec" in line and " strategies " in line]
    assert sorted(writers) == ["docs/results/ml-1m", "docs/results/ml-1m-sampled"]  # one strategies.json each
    assert "configs/sasrec-ml1m-sampled.yaml --strategies mt --seeds 0 " in queue[3]  # the published loss's anchor
    assert all("--no-wait" in line for line in queue) and set(outs) == set(writers)
    assert all("--share" in line for line in queue[1:])  # a search always shares its run store
    assert ["sasrec", "sasrec", "sasrec", "sasrec", "tiger", "hstu", "sasrec"] == [
        line.split("configs/")[1].split("-")[0] for line in queue]
    tiger = [line for line in queue if "tiger" in line]
    assert all("--epochs 40 --patience 5" in line for line in tiger)  # the same stated bound for both strategies
    assert len(tiger) == 1 and "--strategies mt,genpas" in tiger[0]  # one writer of strategies-tiger.json
    assert "--seeds 0,1 " in tiger[0]
    assert "--strategies mt,genpas --search docs/results/ml-1m/search.json --seeds 0,1 " in queue[-2]  # HSTU
    bad = subprocess.run(["bash", str(script), "start", "0"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert bad.returncode == 2 and bad.stderr == "LANES must be a positive whole number, got '0'\n"


def test_a_campaign_lane_waits_for_the_pick_gives_up_on_failing_commands_and_ends(tmp_path):
    """A lane (with a stand-in genpas on PATH, in a scratch repository): commands needing the search's pick wait for
    it, a command left to other lanes is run again, one that fails twice in a row is given up, and the lane ends
    once every command has written its results or been given up."""
    import shutil
    import subprocess
    from pathlib import Path

    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(Path(__file__).parents[1] / "scripts" / "cpu_campaign.sh", repo / "scripts")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "genpas").write_text(f"""#!/usr/bin/env bash
echo "$*" >> {calls}
case "$*" in
  search*) mkdir -p docs/results/ml-1m && touch docs/results/ml-1m/search.json; echo "wrote search.json" ;;
  *tiger*) echo "error: the text extra is not installed" >&2; exit 2 ;;
  *hstu*) if [ -f {tmp_path}/hstu-once ]; then echo "wrote strategies-hstu.json"; else touch {tmp_path}/hstu-once
          echo "1 run(s) left to the processes training them (mt-x)"; fi ;;
  *long-tail*) echo "unchanged: long-tail.json and its report (every run was finished already)" ;;
  *) echo "wrote strategies.json" ;;
esac
""")
    (bin_dir / "genpas").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PAUSE": "0", "HOME": str(tmp_path)}
    lane = subprocess.run(["bash", "scripts/cpu_campaign.sh", "lane"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=60)
    made = calls.read_text().splitlines()
    assert lane.returncode == 0 and "every command has written its results or been given up" in lane.stdout
    assert sum("tiger" in c for c in made) == 2 and lane.stdout.count("giving up on genpas") == 1  # twice
    assert sum("long-tail" in c for c in made) == 2  # an unchanged result counts as written: not run a third time
    assert sum("hstu" in c for c in made) == 2 and sum(c.startswith("search") for c in made) == 2
    assert made[0].startswith("search") and "search.json" in made[1]  # the pick exists once the search wrote it


def test_the_gpu_campaign_script_parses_and_says_how_to_use_it(tmp_path):
    import os
    import subprocess
    from pathlib import Path

    script = Path(__file__).parents[1] / "scripts" / "gpu_campaign.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert usage.returncode == 2 and "stage" in usage.stdout and "unstage" in usage.stdout
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    off_device = subprocess.run(["bash", str(script), "run", "10"], capture_output=True, text=True, env=env,
                                cwd=tmp_path)
    assert off_device.returncode != 0 and "run this on the GPU machine" in off_device.stderr


def test_park_runs_stages_unfinished_checkpoints_and_unstages_finished_ones(tmp_path):
    import shutil
    import subprocess
    from pathlib import Path

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    (tmp_path / "scripts").mkdir()
    shutil.copy(Path(__file__).parents[1] / "scripts" / "park_runs.sh", tmp_path / "scripts")
    (tmp_path / ".gitignore").write_text("/exp/runs/*/*\n!/exp/runs/*/config.yaml\n!/exp/runs/*/log.csv\n"
                                         "!/exp/runs/*/metrics.json\n")
    runs = tmp_path / "exp" / "runs"
    for name in ("going", "done", "fresh", "capped"):
        (runs / name).mkdir(parents=True)
        (runs / name / "config.yaml").write_text("seed: 0\n")
        (runs / name / "log.csv").write_text("epoch,loss\n0,1.0\n4,0.5\n")
    for name in ("going", "done", "capped"):
        (runs / name / "last.pt").write_bytes(b"state")
        (runs / name / "best.safetensors").write_bytes(b"weights")
    (runs / "done" / "metrics.json").write_text("{}")
    (runs / "done" / "ranks.npz").write_bytes(b"ranks")
    (runs / "going" / "continued.json").write_text('{"from": "capped", "epochs": 4}')  # names the run it goes on from
    # finished at its epoch cap: its last.pt is what a higher cap continues from, so it stays in the index
    (runs / "capped" / "metrics.json").write_text('{\n  "stopped_by": "epochs",\n  "config": {"cosine": false}\n}\n')
    (runs / "pop").mkdir()  # finished without weights (a popularity run), and last in the loop
    (runs / "pop" / "metrics.json").write_text("{}")
    git("add", "-f", "exp/runs/done/last.pt")  # parked in an earlier session, finished since
    done = subprocess.run(["bash", "scripts/park_runs.sh", "exp"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and "parked exp/runs/going at epoch 4" in done.stdout
    assert "kept exp/runs/capped/last.pt (ended by its epoch cap)" in done.stdout
    assert sorted(git("diff", "--cached", "--name-only").split()) == [
        "exp/runs/capped/best.safetensors", "exp/runs/capped/last.pt", "exp/runs/capped/metrics.json",
        "exp/runs/done/best.safetensors", "exp/runs/done/metrics.json", "exp/runs/done/ranks.npz",
        "exp/runs/going/best.safetensors", "exp/runs/going/config.yaml", "exp/runs/going/continued.json",
        "exp/runs/going/last.pt",
        "exp/runs/going/log.csv"]  # the finished run keeps its best weights, its last.pt left the index; the run
    #                               with no checkpoint is not parked
    assert (runs / "done" / "last.pt").exists()  # the files themselves stay
    missing = subprocess.run(["bash", "scripts/park_runs.sh", "nowhere"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode == 2 and "nowhere/runs: no such directory" in missing.stderr


def test_a_cut_ledger_line_reruns_and_a_damaged_one_is_an_error(tmp_path, caplog):
    import pytest

    from genpas.errors import GenpasError
    from genpas.search.run_store import Ledger

    path = tmp_path / "ledger.jsonl"
    path.write_text('{"name": "a"}\n{"name": "b", "cur')  # the second append was cut by a crash
    with caplog.at_level("WARNING"):
        ledger = Ledger(path)
    assert ledger.done == {"a": {"name": "a"}}
    assert "line 2 is not a complete record" in caplog.text  # said, not silently dropped
    ledger.add({"name": "c"})  # lands on a line of its own, so it is read back
    assert Ledger(path).done == {"a": {"name": "a"}, "c": {"name": "c"}}
    assert path.read_text().endswith('{"name": "b", "cur\n{"name": "c"}\n')
    for damage in ("[1]", "{}", '{"name": 3}', '"text"', '{"name": "b", "valid": "x"}',
                   '{"name": "b", "test": {"ndcg@10": "abc"}}', '{"name": "b", "valid": {}}',
                   '{"name": "b", "valid": {"recall@5": 0.1, "ndcg@5": 0.1, "recall@10": 0.1, "ndcg@10": NaN}}',
                   '{"name": "b", "train_seconds": "x"}'):
        path.write_text('{"name": "a"}\n' + damage + "\n")
        with pytest.raises(GenpasError, match="ledger.jsonl: line 2: not a run record"):
            Ledger(path)


def test_run_progress_counts_the_epochs_patience_and_the_cap_still_allow(tmp_path):
    from genpas.search.run_logs import run_progress
    from genpas.train.config import TrainConfig

    log = tmp_path / "log.csv"
    scores = [0.1, 0.3, 0.2, 0.3, 0.25]  # best at epoch 1; the tie at epoch 3 is no gain
    log.write_text("epoch,valid_ndcg@10,epoch_seconds,optimizer_steps\n"
                   + "".join(f"{e},{s},{10 * (e + 1)},{5 * (e + 1)}\n" for e, s in enumerate(scores)))
    got = run_progress(log, TrainConfig(epochs=100, patience=10))
    assert (got["epochs"], got["best_epoch"], got["best_valid_ndcg@10"]) == (5, 1, 0.3)
    assert got["epochs_left"] == 7  # epochs 5..11: the run stops after epoch 11 (10 without gain after epoch 1)
    assert got["epoch_seconds"] == 30.0  # the mean of the last five epochs' seconds
    assert run_progress(log, TrainConfig(epochs=8, patience=10))["epochs_left"] == 3  # the cap comes first
    assert run_progress(log, TrainConfig(epochs=100, patience=3))["epochs_left"] == 0
    assert run_progress(tmp_path / "none.csv", TrainConfig())["epochs_left"] is None


def test_the_plan_lists_a_run_finished_on_other_data_as_pending(settings, tmp_path, caplog):
    run_strategies(settings, RunStore(tmp_path / "exp"), ("mt",))
    # the log edited in place under the same name: the finished runs' data checksum no longer matches
    write_table(synthesize(SynthConfig(users=50, items=20, mean_length=8, seed=6)), tmp_path / "log.csv")
    planned = campaign.plan(job(settings), RunStore(tmp_path / "exp"))
    assert [r["state"] for r in planned] == ["pending"] * 4 and planned[0]["epochs"] == 0  # no epochs of this data
    assert "finished on other data than" in caplog.text and "it trains again" in caplog.text
    stranger = Stranger(tmp_path / "exp" / "runs" / ".claims" / planned[0]["key"])  # a worker retrains it
    assert campaign.plan(job(settings), RunStore(tmp_path / "exp"))[0]["state"] == "running"
    stranger.release()


def test_the_leaders_command_runs_only_until_the_search_has_picked(tmp_path):
    import os
    import shutil
    import subprocess
    from pathlib import Path

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "scripts").mkdir()
    shutil.copy(Path(__file__).parents[1] / "scripts" / "cpu_campaign.sh", tmp_path / "scripts")

    def queue(**env):
        return subprocess.run(["bash", "scripts/cpu_campaign.sh", "queue"], cwd=tmp_path, capture_output=True,
                              text=True, env={**os.environ, **env}).stdout.splitlines()

    plain, led = queue(), queue(LEADER="0,1,1")
    assert led[0] == plain[0] and led[2:] == plain[1:]  # the leader's command comes right after the search
    assert "--strategies mt,genpas --genpas 0,1,1 --seeds 0,1" in led[1] and "--share --no-wait" in led[1]
    (tmp_path / "docs" / "results" / "ml-1m").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "ml-1m" / "search.json").write_text("{}")
    assert queue(LEADER="0,1,1") == plain  # once the search has picked, the pick's command writes the table
    bad = subprocess.run(["bash", "scripts/cpu_campaign.sh", "start"], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "LEADER": "0;1"})
    assert bad.returncode == 2 and "LEADER must be ALPHA,BETA,GAMMA" in bad.stderr
