"""Properties of preprocessing (k-core fixed point, ordering) and of the leave-one-out split."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genpas.data.preprocess import build_store, kcore_mask
from genpas.data.split import leave_one_out

events_strategy = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 8), st.integers(0, 5)), min_size=1, max_size=60
)


def frame(events):
    return pl.DataFrame(
        {"user": [f"u{u}" for u, _, _ in events], "item": [f"i{i}" for _, i, _ in events],
         "time": [float(t) for _, _, t in events]},
        schema={"user": pl.Utf8, "item": pl.Utf8, "time": pl.Float64},
    )


@settings(max_examples=150, deadline=None)
@given(events_strategy, st.integers(1, 4), st.integers(1, 4))
def test_kcore_reaches_a_fixed_point_and_keeps_the_maximal_core(events, ku, ki):
    users = np.array([e[0] for e in events])
    items = np.array([e[1] for e in events])
    keep, _ = kcore_mask(users, items, ku, ki)
    # Fixed point: every surviving user and item meets its threshold.
    if keep.any():
        assert np.bincount(users[keep]).max(initial=0) >= 0
        assert (np.bincount(users[keep])[np.unique(users[keep])] >= ku).all()
        assert (np.bincount(items[keep])[np.unique(items[keep])] >= ki).all()
    # Maximality: a naive recomputation from scratch that removes one offender at a time gives the same core.
    alive = np.ones(len(users), bool)
    changed = True
    while changed:
        changed = False
        for idx in np.flatnonzero(alive):
            if (users[alive] == users[idx]).sum() < ku or (items[alive] == items[idx]).sum() < ki:
                alive[idx] = False
                changed = True
                break
    np.testing.assert_array_equal(keep, alive)


@settings(max_examples=150, deadline=None)
@given(events_strategy)
def test_store_is_a_stable_chronological_regrouping(events):
    df = frame(events)
    store = build_store(df)
    dedup = list(dict.fromkeys(events))  # exact duplicates dropped, first kept
    assert store.num_interactions == len(dedup)
    for u in range(store.num_users):
        uid = store.user_ids[u]
        expected = sorted([(t, pos, f"i{i}") for pos, (uu, i, t) in enumerate(dedup) if f"u{uu}" == uid])
        got = [store.item_ids[i] for i in store.sequence(u)]
        assert got == [x[2] for x in expected]


@settings(max_examples=150, deadline=None)
@given(events_strategy, st.sampled_from(["train", "drop"]))
def test_leave_one_out_properties(events, policy):
    store = build_store(frame(events))
    if not (store.lengths >= 3).any():
        return
    split = leave_one_out(store, policy)
    valid, test = split.inputs("valid"), split.inputs("test")
    for row, u in enumerate(split.eval_users):
        seq = store.sequence(u)
        assert split.train.sequence(u).tolist() == seq[:-2].tolist()
        assert valid.targets[row] == seq[-2] and test.targets[row] == seq[-1]
        assert store.items[valid.starts[row]: valid.starts[row] + valid.lengths[row]].tolist() == seq[:-2].tolist()
        assert store.items[test.starts[row]: test.starts[row] + test.lengths[row]].tolist() == seq[:-1].tolist()
    short = np.flatnonzero(store.lengths < 3)
    assert split.short_users == len(short)
    for u in short:
        expected = store.sequence(u).tolist() if policy == "train" else []
        assert split.train.sequence(u).tolist() == expected
    # Nothing is lost: training + 2 held-out events per evaluated user (+ dropped short users) = all events.
    dropped = 0 if policy == "train" else int(store.lengths[short].sum())
    assert split.train.num_interactions + 2 * len(split.eval_users) + dropped == store.num_interactions


def test_truncated_inputs_keep_the_last_items():
    store = build_store(frame([(0, i, i) for i in range(8)]))
    valid = leave_one_out(store).inputs("valid").truncated(3)
    assert valid.lengths.tolist() == [3]
    assert store.items[valid.starts[0]: valid.starts[0] + 3].tolist() == store.sequence(0)[3:6].tolist()


def test_builtin_ml100k(ml100k):
    assert (ml100k.num_users, ml100k.num_items, ml100k.num_interactions) == (943, 1682, 100000)
    assert ml100k.lengths.min() == 20
    for u in range(0, 943, 97):
        assert np.all(np.diff(ml100k.times[ml100k.offsets[u]: ml100k.offsets[u + 1]]) >= 0)


def test_cli_data_json(ml100k_cache, monkeypatch, capsys):
    from genpas.cli import main

    monkeypatch.setenv("GENPAS_CACHE", str(ml100k_cache))
    with pytest.raises(SystemExit) as exc:
        main(["data", "--data", "ml-100k", "--json"])
    assert exc.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["users"], out["items"], out["interactions"]) == (943, 1682, 100000)
    assert out["split"]["eval_users"] == 943


def test_kcore_options_through_the_cli(tmp_path, capsys):
    from genpas.cli import main

    path = tmp_path / "k.csv"
    path.write_text("user_id,item_id,timestamp\n" + "\n".join(
        ["a,x,1", "a,y,2", "a,z,3", "b,x,1", "b,y,2", "c,x,5", "c,q,6"]) + "\n")
    with pytest.raises(SystemExit):
        main(["data", "--data", str(path), "--min-user-count", "2", "--min-item-count", "2", "--json"])
    out = json.loads(capsys.readouterr().out)
    # round 1 drops items z and q (1 event each); round 2 drops user c (1 event left); x,y survive with a,b.
    assert (out["users"], out["items"], out["interactions"]) == (2, 2, 4)
    assert out["preprocessing"]["kcore_rounds"] >= 2
