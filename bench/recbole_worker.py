"""Train RecBole 1.2.1's SASRec under a wall-clock budget and print its figures as one JSON line.

Runs inside the RecBole venv made by bench/vs_recbole.py (never imported by genpas). Three work-arounds that RecBole
1.2.1 needs on a current stack are applied here only: `setuptools<81` is installed in that venv (ray imports
pkg_resources), the NumPy aliases removed in NumPy 2 are restored before RecBole is imported, and no RecBole
checkpoint is read back at all: the best weights are kept in memory, so nothing is ever loaded with
`weights_only=False`.

    python recbole_worker.py DATA_DIR BUDGET_SECONDS SEED [MAX_EPOCHS]
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time

import numpy as np

# RecBole's Config assigns np.float = np.float_ and the like: the underscore spellings must exist (NumPy 2 removed
# float_, complex_ and unicode_), as must the plain ones its modules use.
for _name, _type in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_), ("float", float),
                     ("int", int), ("bool", bool), ("complex", complex), ("object", object), ("str", str),
                     ("long", int), ("unicode", str)):
    if _name not in np.__dict__:
        setattr(np, _name, _type)

import torch  # noqa: E402
from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.model.sequential_recommender.sasrec import SASRec  # noqa: E402
from recbole.trainer import Trainer  # noqa: E402
from recbole.utils import init_seed  # noqa: E402


def main() -> None:
    data_dir, budget, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    max_epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    checkpoints = tempfile.mkdtemp(prefix="recbole-ckpt-")
    config = Config(model="SASRec", dataset="ml-100k", config_dict={
        "data_path": data_dir, "checkpoint_dir": checkpoints, "seed": seed, "reproducibility": True,
        "device": "cpu", "use_gpu": False, "show_progress": False,
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "user_inter_num_interval": "[0,inf)", "item_inter_num_interval": "[0,inf)",
        # the same model as genpas' default SASRec: 64 wide, 2 layers, 2 heads, FFN 256, max length 50
        "MAX_ITEM_LIST_LENGTH": 50, "hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2,
        "hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.0, "loss_type": "CE", "train_neg_sample_args": None,
        "train_batch_size": 256, "learning_rate": 1e-3,
        # leave-one-out by time, full ranking over all items
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["Recall", "NDCG"], "topk": [5, 10], "valid_metric": "NDCG@10", "eval_batch_size": 4096,
    })
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(torch.get_num_threads())
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = SASRec(config, train_data._dataset).to("cpu")
    trainer = Trainer(config, model)
    best, best_state, best_epoch, trained, epochs = -1.0, None, -1, 0.0, []
    for epoch in range(max_epochs):
        if trained >= budget:  # the same rule as genpas' --time-budget: no new epoch once the budget is spent
            break
        start = time.perf_counter()
        trainer._train_epoch(train_data, epoch, show_progress=False)
        seconds = time.perf_counter() - start
        trained += seconds
        valid = trainer.evaluate(valid_data, load_best_model=False, show_progress=False)
        epochs.append({"epoch": epoch, "seconds": seconds, "valid_ndcg@10": float(valid["ndcg@10"])})
        print(json.dumps({"progress": epochs[-1]}), file=sys.stderr, flush=True)
        if valid["ndcg@10"] > best:
            best, best_epoch, best_state = float(valid["ndcg@10"]), epoch, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    test = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    valid = trainer.evaluate(valid_data, load_best_model=False, show_progress=False)
    print(json.dumps({
        "seed": seed, "epochs": epochs, "best_epoch": best_epoch, "train_seconds": trained,
        "epoch_seconds": float(np.mean([e["seconds"] for e in epochs])),
        "training_samples_per_epoch": len(train_data.dataset),
        "valid": {k: float(v) for k, v in valid.items()}, "test": {k: float(v) for k, v in test.items()},
        "torch_threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
