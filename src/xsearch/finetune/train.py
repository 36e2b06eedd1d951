"""Fine-tune e5-small end to end with a topic head on a few labelled examples."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..errors import XsearchError
from ..threads import cpu_threads
from . import DEFAULT_BATCH, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_MAX_LEN
from .classifier import CosineHead, FinetunedClassifier
from .model import Batcher, default_device, encode, encoder_from_weights

Log = Callable[[str], None]


@dataclass
class FinetuneConfig:
    lr: float = DEFAULT_LR  # encoder
    head_lr: float = 1e-3  # the head starts at the prototypes; it may move faster
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH
    max_len: int = DEFAULT_MAX_LEN
    dev_fraction: float = 0.1  # held out for early stopping when no dev set is given
    patience: int = 1  # epochs without a better dev score before stopping
    warmup: float = 0.1
    weight_decay: float = 0.01
    seed: int = 0


def split_dev(texts: Sequence[str], labels: Sequence[str], fraction: float, seed: int
              ) -> tuple[list[int], list[int]]:
    """Stratified (train, dev) positions; labels with fewer than 3 examples stay in train."""
    rng = random.Random(seed)
    train, dev = [], []
    for lb in sorted(set(labels)):
        pos = [i for i, x in enumerate(labels) if x == lb]
        rng.shuffle(pos)
        n = int(round(len(pos) * fraction)) if len(pos) >= 3 else 0
        dev += pos[:n]
        train += pos[n:]
    return sorted(train), sorted(dev)


def finetune(texts: Sequence[str], labels: Sequence[str], config: FinetuneConfig | None = None,
             dev: tuple[Sequence[str], Sequence[str]] | None = None,
             log: Log | None = None, device: torch.device | str | None = None
             ) -> FinetunedClassifier:
    """Train encoder + head on (text, label) pairs; early stopping on the dev accuracy.

    Without ``dev``, ``config.dev_fraction`` of the examples is held out (stratified); with
    too few examples for that, all epochs run and the last state is kept.
    """
    cfg = config or FinetuneConfig()
    texts, labels = list(texts), list(labels)
    names = sorted(set(labels))
    if len(names) < 2:
        raise XsearchError("fine-tuning needs examples of at least two labels")
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    torch.set_num_threads(cpu_threads())
    device = torch.device(device) if device else default_device()
    say = log or (lambda _m: None)
    if dev is None:
        tr, dv = split_dev(texts, labels, cfg.dev_fraction, cfg.seed)
        dev_texts, dev_labels = [texts[i] for i in dv], [labels[i] for i in dv]
        texts, labels = [texts[i] for i in tr], [labels[i] for i in tr]
    else:
        dev_texts, dev_labels = list(dev[0]), list(dev[1])

    encoder = encoder_from_weights().to(device)
    batcher = Batcher(cfg.max_len)
    y = np.array([names.index(lb) for lb in labels])
    frozen = encode(encoder, batcher, texts)
    head = CosineHead(encoder.config["hidden"], len(names)).to(device)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(np.vstack([frozen[y == k].mean(0)
                                                      for k in range(len(names))])))
    clf = FinetunedClassifier(encoder, head, names, cfg.max_len)
    groups = [{"params": list(encoder.parameters()), "lr": cfg.lr},
              {"params": list(head.parameters()), "lr": cfg.head_lr}]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * ((len(texts) + cfg.batch_size - 1) // cfg.batch_size)
    warm = max(1, int(cfg.warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    contents = batcher.ids(texts)
    target = torch.from_numpy(y).to(device)
    best_state, best_score, bad, history = None, -1.0, 0, []
    started, tokens = time.perf_counter(), 0
    for epoch in range(cfg.epochs):
        encoder.train()
        head.train()
        order = list(range(len(texts)))
        random.shuffle(order)
        total = 0.0
        for a in range(0, len(order), cfg.batch_size):
            part = order[a : a + cfg.batch_size]
            words, mask = batcher.tensors([contents[i] for i in part], device)
            loss = torch.nn.functional.cross_entropy(head(encoder(words, mask)), target[part])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(part)
            tokens += int(mask.sum())
        entry = {"epoch": epoch + 1, "train_loss": round(total / len(texts), 4)}
        if dev_texts:
            pred, _ = clf.predict(dev_texts)
            entry["dev_accuracy"] = round(float(np.mean([p == t for p, t in
                                                         zip(pred, dev_labels, strict=True)])), 4)
        history.append(entry)
        say(f"epoch {epoch + 1}/{cfg.epochs}: " + ", ".join(f"{k} {v}" for k, v in entry.items()
                                                            if k != "epoch"))
        if not dev_texts:
            continue
        if entry["dev_accuracy"] > best_score:
            best_score, bad = entry["dev_accuracy"], 0
            best_state = ({k: v.detach().clone() for k, v in encoder.state_dict().items()},
                          {k: v.detach().clone() for k, v in head.state_dict().items()})
        else:
            bad += 1
            if bad >= cfg.patience:
                say(f"early stop after epoch {epoch + 1} (best dev accuracy {best_score})")
                break
    if best_state is not None:
        encoder.load_state_dict(best_state[0])
        head.load_state_dict(best_state[1])
    seconds = time.perf_counter() - started
    clf.meta.update({"config": asdict(cfg), "history": history, "train_examples": len(texts),
                     "dev_examples": len(dev_texts), "train_seconds": round(seconds, 1),
                     "train_tokens_per_s": round(tokens / seconds, 1),
                     "device": str(device)})
    return clf
