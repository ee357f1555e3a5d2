"""Data-parallel training with two CPU processes (gloo): disjoint, complete shares and identical final weights."""

from __future__ import annotations

import os
import socket
from collections import Counter

import pytest
import torch
import torch.multiprocessing as mp

from genpas.augment import make_strategy
from genpas.augment.batches import StreamConfig, TrainingStream
from genpas.data.split import leave_one_out
from genpas.data.synth import SynthConfig, synthesize_store
from genpas.train.config import TrainConfig

CFG = dict(strategy="genpas", alpha=1.0, beta=1.0, gamma=0.0, mode="pairs", dim=16, layers=1, heads=1, max_len=6,
           batch_size=16, epochs=1, progress=False, warmup_steps=2, num_pairs=203)


def make_split():
    return leave_one_out(synthesize_store(SynthConfig(users=60, items=30, mean_length=10, seed=2)))


def rows_of(batch) -> list:
    out = []
    for inp, tgt in zip(batch["inputs"].tolist(), batch["targets"].tolist()):
        n = sum(1 for x in inp if x > 0)
        out.append((tuple(inp[:n]), tuple(tgt[:n])))
    return out


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from genpas.train.trainer import Trainer

    seen = []
    trainer = Trainer(TrainConfig(**CFG, device="cpu"), os.path.join(out, "run"), split=make_split(),
                      on_batch=lambda b: seen.extend(rows_of(b)))
    trainer.fit()
    torch.save({"rows": [list(map(list, r)) for r in seen],
                "weights": {k: v.clone() for k, v in trainer.model.state_dict().items()}},
               os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")
def test_two_ranks_share_the_epoch_and_agree_on_weights(tmp_path):
    mp.spawn(worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    # Identical weights after training: gradients were averaged and every rank applied the same steps.
    for name, tensor in ranks[0]["weights"].items():
        torch.testing.assert_close(tensor, ranks[1]["weights"][name], rtol=0, atol=0)
    # Equal shares: 203 draws cut to 202, 101 per rank.
    assert len(ranks[0]["rows"]) == len(ranks[1]["rows"]) == 101
    # Disjoint and complete: together the ranks saw exactly the single-process epoch of the first 202 draws.
    split = make_split()
    single = TrainingStream(split.train, make_strategy("genpas", 1.0, 1.0, 0.0),
                            StreamConfig("pairs", 6, 16, 0, num_pairs=202))
    expected = Counter(row for batch in single for row in rows_of(batch))
    got = Counter(tuple(tuple(x) for x in row) for r in ranks for row in r["rows"])
    assert got == expected
    # And the shares are the two halves of that epoch, in order.
    ordered = [row for batch in single for row in rows_of(batch)]
    assert [tuple(tuple(x) for x in row) for row in ranks[0]["rows"]] == ordered[:101]
    assert [tuple(tuple(x) for x in row) for row in ranks[1]["rows"]] == ordered[101:]
