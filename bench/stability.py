"""Do the default recipes collapse? Many seeds of the early epochs, before and after the warm-up.

A collapsed run (issue 20, item 10) is one whose first steps at the full learning rate kill
the ReLU units of a layer without BatchNorm after it (``cnn_small``'s fully connected layer,
the MLP's hidden layers): the loss spikes, most units never fire again, and the run ends far
below its seeds (27.5% training accuracy instead of 82%). It is decided in the first few steps,
so this benchmark trains the early epochs of each regime, where it happens, many seeds each,
and records per run the training, validation and test accuracy and the share of dead units of
the penultimate layer (no test sample makes them positive: a direct measure of collapse, not
an accuracy threshold).

Regimes (each a base recipe; an ``AUGS`` entry adds one augmentation at one strength):

* ``preset``: the study presets' small-data recipe (``SMALL_DATA``: ``cnn_small``, plain
  momentum, lr 0.05, cosine, 10k stratified images) cut to ``--epochs`` (default 1), at every
  augmentation strength of every augmentation preset (mixup 1, 2; crop 2, 4; rrc 0.6, 0.35,
  0.08; off) and the crop 2 + flip 0.5 of the README's example.
* ``default``: the same augmentations on the default recipe (Nesterov momentum, the default lr:
  0.05 when the rows of variant ``after`` were measured, 0.03 since,
  cosine: what ``classgap train`` trains) with ``cnn_small`` on the same 10k images, ``--epochs``
  (default 1).
* ``readme``: the README's example (default recipe: Nesterov, the default lr; ``cnn_small``,
  4 epochs, 5k images, crop 2 + flip 0.5).
* ``issue``: the issue's command (default recipe, ``cnn_small``, the full training set, 1 epoch,
  crop 2 + flip 0.5, fp32).
* ``mlp5k``: the default study's own regime (``MLP_5K``, 40 epochs) at label smoothing 0, 0.1,
  0.3: the whole run, since it is cheap.

``--variant before`` pins ``schedule.warmup_epochs=0`` (the recipes as they were);
``--variant after`` takes the recipes as they are now. Every run is one single-threaded
training in this process, appended to a JSON-lines file (a rerun skips what is there):

    python bench/stability.py --regimes preset --variant after --seeds 0-19
    python bench/stability.py --table
    python bench/stability.py --regimes issue --variant before --seeds 0 --trace 30
    python bench/stability.py --regimes default --set optim.lr=0.03 --seeds 0-19   # a candidate

``--trace N`` is the diagnosis: the first N steps of one run, per step the training loss, the
gradient norm and the share of the penultimate layer's units that no image of the batch
makes positive.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "runs" / "stability.jsonl"

#: Every augmentation strength of the augmentation presets (the reference "off" once), plus
#: the README example's crop + flip.
AUGS: dict[str, tuple[str, ...]] = {
    "off": (),
    "mixup=1": ("aug.mixup=1",), "mixup=2": ("aug.mixup=2",),
    "crop=2": ("aug.crop=2",), "crop=4": ("aug.crop=4",),
    "rrc=0.6": ("aug.rrc=0.6",), "rrc=0.35": ("aug.rrc=0.35",), "rrc=0.08": ("aug.rrc=0.08",),
    "crop=2+flip": ("aug.crop=2", "aug.flip=0.5"),
}
CROP_FLIP = ("aug.crop=2", "aug.flip=0.5")


def regimes(epochs: int) -> dict[str, dict[str, tuple[str, ...]]]:
    """``{regime: {label: overrides}}``: every configuration the benchmark trains."""
    from classgap.sweep.presets import MLP_5K, SMALL_DATA

    small = (*SMALL_DATA, f"train.epochs={epochs}", f"train.eval_every={epochs}")
    readme = ("data.dataset=fashion-mnist", "model.name=cnn_small", "train.epochs=4",
              "data.train_subset=5000")
    issue = ("data.dataset=fashion-mnist", "model.name=cnn_small", "train.epochs=1",
             "train.precision=fp32")
    default = ("data.dataset=fashion-mnist", "model.name=cnn_small", "data.train_subset=10000",
               "data.val_size=5000", f"train.epochs={epochs}", f"train.eval_every={epochs}")
    return {
        "preset": {label: (*small, *aug) for label, aug in AUGS.items()},
        "default": {label: (*default, *aug) for label, aug in AUGS.items()},
        "readme": {"crop=2+flip": (*readme, *CROP_FLIP)},
        "issue": {"crop=2+flip": (*issue, *CROP_FLIP)},
        "mlp5k": {f"ls={ls}": (*MLP_5K, f"optim.label_smoothing={ls}") for ls in (0, 0.1, 0.3)},
    }


class _DeadUnits:
    """Forward hook on the backbone: which penultimate units ever fire in evaluation."""

    def __init__(self) -> None:
        self.alive: Any = None

    def __call__(self, module: Any, inputs: Any, output: Any) -> None:
        if module.training:
            return
        fired = (output.detach() > 0).any(0)  # (D,)
        self.alive = fired if self.alive is None else self.alive | fired

    @property
    def dead(self) -> float:
        return float("nan") if self.alive is None else 1.0 - float(self.alive.float().mean())


def train_one(overrides: tuple[str, ...], seed: int) -> dict[str, Any]:
    """Train one run (1 thread) and return its accuracies and dead-unit share."""
    import classgap.models
    from classgap.config import DEFAULT_WARMUP_EPOCHS, load_config
    from classgap.train import train

    hook = _DeadUnits()
    create = classgap.models.create_model

    def create_hooked(*args: Any, **kwargs: Any) -> Any:
        model = create(*args, **kwargs)
        model.backbone.register_forward_hook(hook)
        return model

    classgap.models.create_model = create_hooked  # the trainer imports it at call time
    try:
        cfg = load_config(overrides=[*overrides, f"train.seed={seed}", "train.threads=1",
                                     "train.progress=false"])
        t0 = time.perf_counter()
        res = train(cfg)
    finally:
        classgap.models.create_model = create
    return {"train_acc": res.history[-1]["train_acc"], "val_acc": res.val_accuracy,
            "test_acc": res.test_accuracy, "dead": hook.dead,
            "warmup_epochs": (DEFAULT_WARMUP_EPOCHS if cfg.schedule.warmup_epochs is None
                              else cfg.schedule.warmup_epochs),
            "seconds": round(time.perf_counter() - t0, 2)}


class _Stop(Exception):
    pass


def trace(overrides: tuple[str, ...], seed: int, steps: int) -> list[tuple[float, float, float]]:
    """``(loss, gradient norm, dead share)`` of the first ``steps`` optimizer steps of a run."""
    import torch

    import classgap.train.trainer as trainer
    from classgap.config import load_config

    rows: list[tuple[float, float, float]] = []
    step = trainer._forward_backward

    def traced(model: Any, criterion: Any, x: Any, targets: Any, **kw: Any) -> Any:
        with torch.no_grad():
            dead = float(((model.backbone(x) > 0).sum(0) == 0).float().mean())  # (B, D) -> ()
        loss, logits = step(model, criterion, x, targets, **kw)
        norm = torch.sqrt(sum((p.grad.float() ** 2).sum() for p in model.parameters()
                              if p.grad is not None))
        rows.append((float(loss.detach()), float(norm), dead))
        if len(rows) >= steps:
            raise _Stop
        return loss, logits

    trainer._forward_backward = traced  # train() looks it up at each step
    try:
        trainer.train(load_config(overrides=[*overrides, f"train.seed={seed}", "train.threads=1",
                                             "train.progress=false"]))
    except _Stop:
        pass
    finally:
        trainer._forward_backward = step
    return rows


def _seeds(text: str) -> list[int]:
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


def _done(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run(names: list[str], labels: list[str] | None, variant: str, seeds: list[int],
        epochs: int, path: Path, sets: tuple[str, ...] = ()) -> None:
    tag = " ".join((variant, *sets))  # a candidate recipe change is a variant of its own
    have = {(r["regime"], r["label"], r["variant"], r["seed"], r["epochs"]) for r in _done(path)}
    path.parent.mkdir(parents=True, exist_ok=True)
    table = regimes(epochs)
    # Seeds outermost: an interrupted run still covers every configuration at some seeds.
    for seed in seeds:
        for name in names:
            for label, overrides in table[name].items():
                if labels and label not in labels:
                    continue
                ep = epochs if name in ("preset", "default") else 0  # the others fix theirs
                if (name, label, tag, seed, ep) in have:
                    continue
                extra = ("schedule.warmup_epochs=0",) if variant == "before" else ()
                row = {"regime": name, "label": label, "variant": tag, "seed": seed,
                       "epochs": ep, **train_one((*overrides, *extra, *sets), seed)}
                with path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)


def table(path: Path) -> str:
    """Markdown: per regime, configuration and variant, the spread over seeds and collapses."""
    import numpy as np

    from classgap.analysis.failed import flag_failed

    rows = _done(path)
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["regime"], r["epochs"], r["label"], r["variant"]), []).append(r)
    out = ["| regime | config | variant | seeds | test % min / median / max | train % min | "
           "max dead units | flagged by the study's rule |", "|---|---|---|---|---|---|---|---|"]
    for (name, ep, label, variant), g in sorted(groups.items()):
        g = sorted(g, key=lambda r: r["seed"])
        test = 100 * np.array([r["test_acc"] for r in g])
        train = 100 * np.array([r["train_acc"] for r in g])
        flags = flag_failed([r["val_acc"] for r in g], [r["train_acc"] for r in g],
                            n_classes=10)
        bad = [f"seed {g[i]['seed']}" for i in np.flatnonzero(flags)]
        regime = f"{name} ({ep} ep)" if ep else name
        out.append(f"| {regime} | {label} | {variant} | {len(g)} | {test.min():.1f} / "
                   f"{np.median(test):.1f} / {test.max():.1f} | {train.min():.1f} | "
                   f"{max(r['dead'] for r in g):.2f} | {', '.join(bad) or 'none'} |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--regimes", default="preset",
                   help="comma-separated: preset,default,readme,issue,mlp5k")
    p.add_argument("--labels", default=None, help="comma-separated configuration labels only")
    p.add_argument("--variant", choices=("before", "after"), default="after")
    p.add_argument("--seeds", default="0-19")
    p.add_argument("--epochs", type=int, default=1,
                   help="epochs of the preset and default regimes")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a candidate change of every run's recipe (repeatable); its rows get "
                        "the variant 'after KEY=VALUE'")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--table", action="store_true")
    p.add_argument("--trace", type=int, default=0, metavar="N",
                   help="print the first N steps of each configuration's first seed")
    a = p.parse_args()
    if a.table:
        print(table(a.out))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if a.trace:
        extra = ("schedule.warmup_epochs=0",) if a.variant == "before" else ()
        for name in a.regimes.split(","):
            for label, overrides in regimes(a.epochs)[name].items():
                if a.labels and label not in a.labels.split(","):
                    continue
                rows = trace((*overrides, *extra), _seeds(a.seeds)[0], a.trace)
                print(f"{name} {label} {a.variant}: step loss / gradient norm / dead share")
                print("  ".join(f"{i}: {loss:.2f} / {norm:.1f} / {dead:.2f}"
                                for i, (loss, norm, dead) in enumerate(rows)))
        return
    run(a.regimes.split(","), a.labels.split(",") if a.labels else None, a.variant,
        _seeds(a.seeds), a.epochs, a.out, tuple(a.sets))


if __name__ == "__main__":
    main()
