"""The trainer: GenPAS-fed epochs, early stopping on validation NDCG@10, resumable, optionally data-parallel.

One epoch = the sampler's draws for that epoch (pairs or packed windows), seeded by (seed, epoch). After each epoch
the model is evaluated on the validation targets; the best weights are kept, and training stops after `patience`
epochs without improvement (or at the time budget). An epoch has the same number of optimizer steps for every
strategy (docs/method.md "Epochs"), so epochs compare equal compute. A non-finite loss or validation score stops the
run with an error naming the epoch; such an epoch is never kept as the best. The best weights are then restored and
evaluated on validation and test. Everything is written under the run directory:

    config.yaml   the full configuration (rerun with --config)
    metrics.json  valid/test metrics, best_epoch, train_seconds, the compute spent (loss.py), config
    ranks.npz     every evaluated user's rank behind those metrics (ranks.py)
    best.safetensors, last.pt   checkpoints (see checkpoint.py)
    log.csv, tensorboard/       per-epoch curves

Data-parallel training: launched with torchrun (WORLD_SIZE > 1), each rank trains on its own equal share of every
epoch's draws (see TrainingStream) and DistributedDataParallel averages the gradients (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import torch

from genpas.atomic import write_text
from genpas.augment import make_strategy
from genpas.augment.batches import StreamConfig, TrainingStream
from genpas.errors import GenpasError
from genpas.outputs import remove_empty_parents
from genpas.train.build import (  # noqa: F401 (the API names them here)
    MODELS,
    autocast,
    build_model,
    load_split,
    pick_device,
    resolve_precision,
    sampled_softmax,
)
from genpas.train.checkpoint import load_state, load_weights, restore_state, save_state, save_weights
from genpas.train.config import LEGACY, RESUMABLE_CHANGES, TrainConfig
from genpas.train.evaluate import evaluate, final_evaluation
from genpas.train.loss import Compute, weighted_loss
from genpas.train.memory import memory_problem, within_cores
from genpas.train.ranks import write_ranks
from genpas.train.run_dir import (  # noqa: F401 (the API names them here)
    PROTOCOL,
    clear_run,
    fresh_or_resumable,
    repair_log,
    run_lock,
)
from genpas.train.schedule import lr_lambda

log = logging.getLogger(__name__)


class Trainer:
    def __init__(self, cfg: TrainConfig, out_dir: Path, split=None, on_batch=None, check_memory: bool = True,
                 weights: Path | None = None, after_epoch=None):
        self.cfg = cfg
        self.out = Path(out_dir)
        self.on_batch = on_batch  # test hook: called with every training batch
        # called with the epoch after its checkpoint and log row when the run would go on; what it raises ends the run,
        # resumable (search/pruning.py). One process only: ranks deciding apart would hang the others.
        self.after_epoch = after_epoch
        self.rank, self.world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        if after_epoch is not None and self.world > 1:
            raise GenpasError("an after-epoch hook (the search's --prune) needs a run of one process, not torchrun")
        self.device = pick_device(cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device)
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.split = split if split is not None else load_split(cfg)
        if cfg.threads:
            torch.set_num_threads(within_cores(cfg.threads, "threads"))
        if check_memory:  # before the model exists: a size that cannot fit is one line, not an allocator failure
            self._check_memory()
        torch.manual_seed(cfg.seed)
        model, self.model_info = build_model(cfg, self.split, weights)  # weights: a saved run's, loaded to evaluate
        self.model = model.to(self.device)
        self.sampled = sampled_softmax(cfg, self.split, self.model, self.device)
        self.strategy = make_strategy(cfg.strategy, cfg.alpha, cfg.beta, cfg.gamma)

    def _check_memory(self) -> None:
        """A run that cannot fit is one error line before training starts; with several ranks, every rank refuses
        when one cannot fit (a lone refusal would leave the others waiting at their first collective)."""
        problem = memory_problem(self.cfg, self.split, self.device)
        if self.world > 1:
            flag = torch.tensor([1.0 if problem else 0.0], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if flag.item() and not problem:
                problem = "another rank of this run has too little free memory for it (see its error)"
        if problem:
            raise GenpasError(problem)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def evaluate(self, which: str, exclude_history: bool | None = None) -> dict:
        """Metrics on `which` (valid or test); the run's exclude_history unless told otherwise."""
        exclude = self.cfg.exclude_history if exclude_history is None else exclude_history
        return evaluate(self.model, self.split, which, self.cfg.max_len, self.device, self.cfg.ks, exclude,
                        self.cfg.eval_batch_size)

    # ------------------------------------------------------------------------------------------------------------
    RUN_FILES = ("metrics.json", "best.safetensors", "last.pt", "log.csv")  # a run's marks: never trained over

    def fit(self, resume: bool = False) -> dict:
        """Train (or continue) the run in the output directory, which is locked meanwhile; a run that fails before
        its first epoch leaves no directory it created behind."""
        created = next((d for d in [*self.out.parents][::-1] + [self.out] if not d.exists()), None)  # the topmost
        self.out.mkdir(parents=True, exist_ok=True)
        with run_lock(self.out if self.is_main else None):  # RunBusy: another process's directory, left alone
            try:
                return self._fit(resume)
            except BaseException:  # removed while still locked, so no other process can have started in it
                if created and self.is_main and not any((self.out / name).exists() for name in self.RUN_FILES):
                    shutil.rmtree(self.out, ignore_errors=True)
                    remove_empty_parents(self.out, created)
                raise

    def _fit(self, resume: bool) -> dict:
        cfg = self.cfg
        if not resume and self.is_main:
            existing = [name for name in self.RUN_FILES if (self.out / name).exists()]
            if existing:
                raise GenpasError(f"{self.out} already holds a run ({existing[0]}); continue it with --resume or "
                                  f"train into a new --out")
        if cfg.model == "pop":
            self._write_config()
            return self._finish(best_epoch=0, train_seconds=0.0, epochs_run=0)

        stream = TrainingStream(self.split.train, self.strategy,
            StreamConfig(cfg.mode, cfg.max_len, cfg.batch_size, cfg.seed, cfg.num_pairs, cfg.fixed_budget,
                         cfg.budget_pairs, cfg.classic, cfg.transforms, getattr(self.model, "needs_times", False),
                         cfg.group_by_length),
            rank=self.rank, world_size=self.world,
        )
        workers = within_cores(cfg.num_workers, "num_workers")
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers,
                                             pin_memory=self.device.type == "cuda")
        model = self.model
        if self.world > 1:
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps_per_epoch = len(stream)
        state = {"epoch": -1, "best": -1.0, "best_epoch": -1, "bad_epochs": 0, "train_seconds": 0.0, "lr_scale": 1.0,
                 "valid_seconds": 0.0, "items": self.split.full.item_fingerprint(), "data": self.split.full.fingerprint(),
                 "data_path": str(Path(cfg.data).absolute()),  # where the data is now: a moved run records it anew
                 "compute": Compute().as_dict(), "compute_at_best": Compute().as_dict(), "protocol": PROTOCOL}
        schedule = lr_lambda(cfg.warmup_steps, cfg.epochs * steps_per_epoch, cfg.cosine)
        # The plateau halvings multiply the step schedule; the scale lives in `state` so a resumed run keeps it.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule(step) * state["lr_scale"])
        last = self.out / "last.pt"
        if resume and last.exists():
            saved = load_state(last)
            if saved.get("trainer", {}).get("protocol") != PROTOCOL:
                raise GenpasError(f"--resume: {last} was written under an earlier training protocol (epochs of "
                                  f"unequal steps); train into a new --out")
            self._check_resumable(saved.get("config", {}), moved="data" in saved["trainer"])
            if "items" not in saved["trainer"]:
                log.warning("%s predates the check of the data's items; resuming on the data at hand", last)
            elif (saved["trainer"]["items"], saved["trainer"].get("data", state["data"])) != (state["items"],
                                                                                           state["data"]):
                raise GenpasError(f"--resume: the data has changed since {last} was written (its events, its ids or "
                                  f"their order); train into a new --out")
            restore_state(last, saved, self.model, optimizer, scheduler, self.rank, self.device)
            # in place (the scheduler's lambda reads state["lr_scale"]); valid_seconds: unknown where not saved
            state.update({"valid_seconds": None, **saved["trainer"], "data_path": state["data_path"]})
            if self.is_main:
                repair_log(self.out / "log.csv", state.get("log_row"))
            log.info("resumed after epoch %d", state["epoch"])
        elif resume:
            log.warning("--resume: no checkpoint in %s, starting fresh", self.out)
        self._write_config()  # only now: a refused resume leaves the run's config.yaml as it was
        stopped = state["bad_epochs"] >= cfg.patience
        writer = self._tensorboard() if self.is_main else None
        for epoch in range(state["epoch"] + 1, cfg.epochs):
            if stopped or self._out_of_time(state):
                break
            stream.set_epoch(epoch)
            loss, counts, steps, seconds = self._train_epoch(model, loader, optimizer, scheduler, len(stream), epoch)
            if not math.isfinite(loss):
                raise GenpasError(f"epoch {epoch}: the training loss is {loss} (the run diverged); the best epoch so far "
                                  f"is {state['best_epoch']}; lower --lr, raise --warmup-steps or keep --grad-clip")
            compute = Compute(**state["compute"])
            compute.add(steps, counts)
            state["compute"] = compute.as_dict()
            state["train_seconds"] += seconds
            started = time.perf_counter()
            try:
                valid = self.evaluate("valid")
            except GenpasError as exc:
                raise GenpasError(f"epoch {epoch}: validation: {exc}") from None
            if state["valid_seconds"] is not None:
                state["valid_seconds"] += time.perf_counter() - started
            score = valid["ndcg@10"] if "ndcg@10" in valid else valid[f"ndcg@{cfg.ks[-1]}"]
            if not math.isfinite(score):
                raise GenpasError(f"epoch {epoch}: validation NDCG is {score}; the run diverged")
            if score > state["best"]:
                state.update(best=score, best_epoch=epoch, bad_epochs=0, compute_at_best=compute.as_dict())
                if self.is_main:
                    save_weights(self.out / "best.safetensors", self.model, state["items"])
            else:
                state["bad_epochs"] += 1
                if cfg.lr_plateau and state["bad_epochs"] % cfg.lr_plateau == 0:
                    state["lr_scale"] *= 0.5
            state["epoch"] = epoch
            stopped = state["bad_epochs"] >= cfg.patience
            row = {"epoch": epoch, "loss": loss, "valid_ndcg@10": valid.get("ndcg@10"),
                   "valid_recall@10": valid.get("recall@10"), "epoch_seconds": seconds,
                   "lr": scheduler.get_last_lr()[0], "targets": int(round(float(counts[1]))),
                   "rows": int(round(float(counts[0]))), "effective_targets": float(counts[2]),
                   "optimizer_steps": compute.optimizer_steps}
            state["log_row"] = row  # the checkpoint carries its epoch's log row: see run_dir.repair_log
            self._save_last(state, optimizer, scheduler)
            if self.is_main:
                self._log(row, writer)
                log.info("epoch %d loss %.4f valid ndcg@10 %.4f (%.1fs)", epoch, row["loss"], score, seconds)
            if self.after_epoch is not None and not stopped and epoch + 1 < cfg.epochs and not self._out_of_time(state):
                try:
                    self.after_epoch(epoch)
                except BaseException:
                    if writer is not None:
                        writer.close()
                    raise
        if writer is not None:
            writer.close()
        if state["best_epoch"] < 0:
            raise GenpasError("training ran no epoch (time budget too small?); nothing to evaluate")
        if self.is_main:
            load_weights(self.out / "best.safetensors", self.model, state["items"])
        if self.world > 1:
            for p in self.model.state_dict().values():
                torch.distributed.broadcast(p, 0)
        # Why training ended: validation patience ran out (converged), the time budget did (bounded), or the epochs.
        stopped_by = "patience" if stopped else "epochs" if state["epoch"] + 1 >= cfg.epochs else "time_budget"
        return self._finish(state["best_epoch"], state["train_seconds"], state["epoch"] + 1, steps_per_epoch, stream,
                            state["compute"], state["compute_at_best"], stopped_by, state["valid_seconds"])

    def _train_epoch(self, model, loader, optimizer, scheduler, steps: int, epoch: int):
        """One pass over the epoch's batches; returns (mean loss, counts over all ranks, optimizer steps, seconds),
        counts being [rows, targets, effective targets] (loss.batch_counts)."""
        model.train()
        start = time.perf_counter()
        # Sums stay on the device: reading them every step would synchronise a GPU step by step.
        total_loss = torch.zeros((), device=self.device)
        counts = torch.zeros(3, dtype=torch.float64)
        batches = 0
        bar = self._progress(steps, epoch)
        for batch in loader:
            if self.on_batch is not None:
                self.on_batch(batch)
            with autocast(self.precision, self.device):
                loss, batch_counts = weighted_loss(model, batch, self.device, self.sampled)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            total_loss += loss.detach()
            counts += batch_counts
            batches += 1
            if bar is not None:
                bar.update(1)
                if batches % 20 == 0:
                    elapsed = time.perf_counter() - start
                    bar.set_postfix(loss=f"{float(total_loss) / batches:.4f}",
                                    targets_per_s=f"{float(counts[1]) / elapsed:,.0f}")
        if self.world > 1:  # rows, targets and loss of every rank (so all ranks stop together on a NaN); same steps
            counts = counts.to(self.device)
            torch.distributed.all_reduce(counts)
            torch.distributed.all_reduce(total_loss)
            total_loss /= self.world
        if bar is not None:
            bar.close()
        return float(total_loss) / max(1, batches), counts.cpu().tolist(), batches, time.perf_counter() - start

    # ------------------------------------------------------------------------------------------------------------
    def _finish(self, best_epoch, train_seconds, epochs_run, steps_per_epoch=0, stream=None, compute=None,
                compute_at_best=None, stopped_by=None, valid_seconds=0.0) -> dict:
        started = time.perf_counter()
        # A run ranked without the user's history (the published protocol) also reports the history-kept figures.
        evaluated, ranks = final_evaluation(self.model, self.split, self.cfg, self.device)
        final = time.perf_counter() - started
        metrics = {
            **evaluated,
            "best_epoch": best_epoch,
            "epochs_run": epochs_run,
            "stopped_by": stopped_by,  # patience | time_budget | epochs (None: nothing trained, e.g. popularity)
            "train_seconds": train_seconds,
            # every validation pass and the final evaluations (None: the run resumed a checkpoint that predates it)
            "eval_seconds": None if valid_seconds is None else valid_seconds + final,
            "steps_per_epoch": steps_per_epoch,
            "draws_per_epoch": stream.draws_per_epoch if stream is not None else 0,
            **(compute or Compute().as_dict()),
            "compute_at_best": compute_at_best or Compute().as_dict(),
            "strategy": self.strategy.as_json() | ({"label": "Popularity"} if self.cfg.model == "pop" else {}),
            "data_sha256": self.split.full.fingerprint(),  # what a job reuses this run for (search/compare.py)
            "data_path": str(Path(self.cfg.data).absolute()),  # a relative --data, found from anywhere (run_dir.py)
            "device": str(self.device),
            "precision": self.precision,
            "world_size": self.world,
            **self.model_info,
            "config": self.cfg.to_dict(),
        }
        if self.is_main:  # the ranks first: a run with metrics.json has them (ranks.py)
            write_ranks(self.out, ranks, metrics["data_sha256"])
            write_text(self.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        return metrics

    def _check_resumable(self, saved_json: str, moved: bool) -> None:
        saved = {**LEGACY, **json.loads(saved_json)} if saved_json else {}
        current = self.cfg.to_dict()  # the data's path may move (`moved`) where the data's fingerprint is checked
        for key in sorted((set(saved) | set(current)) - ({"data"} if moved else set())):
            if key not in RESUMABLE_CHANGES and saved.get(key) != current.get(key):
                raise GenpasError(
                    f"--resume: the run in {self.out} was trained with {key} = {saved.get(key)!r}, not "
                    f"{current.get(key)!r}; resume with the same options or use a new --out"
                )

    def _write_config(self) -> None:
        if self.is_main:
            write_text(self.out / "config.yaml", self.cfg.to_yaml())

    def _out_of_time(self, state) -> bool:
        budget = self.cfg.time_budget_minutes
        return budget is not None and state["train_seconds"] >= budget * 60

    def _save_last(self, state, optimizer, scheduler) -> None:
        rng = [torch.get_rng_state()]
        if self.world > 1:
            gathered = [None] * self.world
            torch.distributed.all_gather_object(gathered, torch.get_rng_state())
            rng = gathered
        if self.is_main:
            extra = {"cuda_rng": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {}
            save_state(self.out / "last.pt", {"model": self.model.state_dict(), "optimizer": optimizer.state_dict(),
                                               "scheduler": scheduler.state_dict(), "rng": rng, "trainer": dict(state),
                                               "config": json.dumps(self.cfg.to_dict()), **extra})

    def _progress(self, total, epoch):
        """A progress bar updated by hand, or None. It never wraps the loader: tqdm would iterate it once more
        (asyncio-aware tqdm calls iter() in its constructor), and every DataLoader iterator draws a seed from the
        global torch RNG, so a display option would change the dropout masks and the results."""
        if not (self.cfg.progress and self.is_main):
            return None
        from tqdm.auto import tqdm

        # disable=None: no bar when stderr is not a terminal (logs stay readable)
        return tqdm(total=total, desc=f"epoch {epoch}", leave=False, dynamic_ncols=True, disable=None)

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is an optional extra; the CSV log is always written
            return None
        return SummaryWriter(str(self.out / "tensorboard"))

    def _log(self, row: dict, writer) -> None:
        path = self.out / "log.csv"
        new = not path.exists()
        with open(path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)
        if writer is not None:
            for key, value in row.items():
                if key != "epoch" and value is not None:
                    writer.add_scalar(key, value, row["epoch"])


def train_owned(cfg: TrainConfig, out_dir: Path, split=None, wait: bool = False, fresh: bool = False,
                after_epoch=None) -> dict:
    """Train in a run directory owned by a job (search, main job): a directory left by a different configuration or
    data is emptied, one left by the same is resumed from its last checkpoint (fresh: emptied in any case). A
    directory another process trains in raises RunBusy, or with `wait` is waited for."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(out_dir, wait):  # held from the check to the end of training (the trainer's own lock re-enters it)
        split = split if split is not None else load_split(cfg)
        clear_run(out_dir) if fresh else fresh_or_resumable(cfg, out_dir, split.full)
        return train(cfg, out_dir, resume=(out_dir / "last.pt").exists(), split=split, after_epoch=after_epoch)


def train(cfg: TrainConfig, out_dir: Path, resume: bool = False, split=None, after_epoch=None) -> dict:
    """API twin of `genpas train`: train, restore the best epoch, evaluate, write the run directory (`after_epoch`:
    see Trainer)."""
    return Trainer(cfg, out_dir, split=split, after_epoch=after_epoch).fit(resume=resume)
