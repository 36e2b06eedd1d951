"""Fine-tuning experiments on SIB-200 (slow: minutes per run on a CPU; see benchmarks/).

One run = fine-tune e5-small + head on ``n`` examples of one source language (dev split of the
source for early stopping), then evaluate topic accuracy on the test split of each target,
cross-lingual consistency of the predictions over the targets, and per-pair recall@1 of the
fine-tuned encoder on translation pairs of a few languages (did the alignment survive?).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from . import metrics as M
from .datasets import load_sib200_split

Log = Callable[[str], None]


def sample_examples(rows: list[tuple[str, str, str]], n: int, seed: int = 0
                    ) -> list[tuple[str, str, str]]:
    """``n`` rows at random (all when ``n`` >= the split), same draw for every language."""
    if n >= len(rows):
        return list(rows)
    rng = random.Random(seed)
    return sorted(rng.sample(rows, n), key=lambda r: r[0])


def pair_recall_at_1(vecs: dict[str, np.ndarray]) -> dict[str, float]:
    """Per ordered pair (a->b) of languages: share of a's sentences whose nearest b sentence is
    its translation (rows aligned by translation group)."""
    out = {}
    for a in vecs:
        for b in vecs:
            if a != b:
                best = (vecs[a] @ vecs[b].T).argmax(1)
                out[f"{a}->{b}"] = float(np.mean(best == np.arange(len(best))))
    return out


def run_finetune(root: Path, source: str, n: int, lr: float, targets: Sequence[str],
                 retrieval_langs: Sequence[str] = (), epochs: int = 5, seed: int = 0,
                 log: Log = print, partial: Callable[[dict], None] | None = None,
                 save_to: Path | None = None) -> dict:
    """One fine-tuning run and its evaluation; returns a JSON-able dict.

    ``partial(result)`` hears the result so far after each target (slow runs can be cut
    short and still report); ``save_to`` keeps the trained classifier.
    """
    from ..finetune.train import FinetuneConfig, finetune

    train = sample_examples(load_sib200_split(root, source, "train"), n, seed)
    dev = load_sib200_split(root, source, "dev")
    cfg = FinetuneConfig(lr=lr, epochs=epochs, seed=seed)
    log(f"[{source} n={n} lr={lr}] training on {len(train)} examples")
    clf = finetune([r[2] for r in train], [r[1] for r in train], cfg,
                   dev=([r[2] for r in dev], [r[1] for r in dev]), log=log)
    out: dict = {"source": source, "n": len(train), "lr": lr, "epochs": epochs,
                 "history": clf.meta["history"], "train_seconds": clf.meta["train_seconds"],
                 "train_tokens_per_s": clf.meta["train_tokens_per_s"], "accuracy": {}}
    if save_to:
        clf.save(save_to)
    if retrieval_langs:
        rows = {lg: load_sib200_split(root, lg, "test") for lg in retrieval_langs}
        ids = sorted(set.intersection(*({r[0] for r in rs} for rs in rows.values())))
        vecs = {}
        for lg, rs in rows.items():
            text = {r[0]: r[2] for r in rs}
            vecs[lg] = clf.embed([text[i] for i in ids])
        out["recall_at_1"] = pair_recall_at_1(vecs)
        out["mean_recall_at_1"] = float(np.mean(list(out["recall_at_1"].values())))
        log(f"[{source} n={n} lr={lr}] mean pair recall@1 {out['mean_recall_at_1']:.3f}")
        if partial:
            partial(out)
    preds: dict[str, dict[str, str]] = {}
    started = time.perf_counter()
    for tgt in targets:
        rows = load_sib200_split(root, tgt, "test")
        labels, _ = clf.predict([r[2] for r in rows])
        preds[tgt] = {r[0]: p for r, p in zip(rows, labels, strict=True)}
        out["accuracy"][tgt] = float(np.mean([p == r[1] for r, p in zip(rows, labels,
                                                                          strict=True)]))
        log(f"[{source} n={n} lr={lr}] {tgt}: accuracy {out['accuracy'][tgt]:.3f}")
        out["eval_seconds"] = round(time.perf_counter() - started, 1)
        out["predict_tokens_per_s"] = clf.meta.get("measured_tokens_per_s")
        if len(preds) > 1:
            out["consistency"] = M.consistency(preds)
            pw = M.pairwise_agreement(preds)
            out["mean_pairwise_agreement"] = float(np.mean(list(pw.values())))
        if partial:
            partial(out)
    return out


def append_result(path: Path, result: dict) -> None:
    """Add one run to a JSON-lines log (results arrive one by one from background jobs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(result) + "\n")
