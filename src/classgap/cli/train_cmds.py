"""``classgap train`` and ``classgap list``: thin commands over :mod:`classgap.train`.

The named options of ``train`` are shortcuts for ``--set section.key=value``; the layers are
defaults ← ``--config`` file ← named options ← ``--set`` (the last one given wins).
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from classgap._richtext import cell
from classgap.catalog import TOPICS, listing
from classgap.cli import render
from classgap.cli.app import app, console
from classgap.config import OPTIMIZERS

# option name -> config key, in the order they are applied
_SHORTCUTS = {
    "dataset": "data.dataset", "data_dir": "data.data_dir", "train_subset": "data.train_subset",
    "model": "model.name", "epochs": "train.epochs", "seed": "train.seed",
    "lr": "optim.lr", "weight_decay": "optim.weight_decay", "batch_size": "optim.batch_size",
    "device": "train.device", "precision": "train.precision", "loss": "loss.name",
    "optim": "optim.name", "rho": "optim.rho", "imbalance": "data.imbalance",
    "profile": "data.profile",
}


def default_out_dir(config_dict: dict) -> Path:
    """``runs/<dataset>-<model>-s<seed>-<first 8 hex of the config id>``: one folder per
    config, named by the id a study gives the same config (:func:`classgap.config.config_id`)."""
    from classgap.config import Config, config_id

    digest = config_id(Config.from_dict(config_dict))[:8]
    data = re.sub(r"[^A-Za-z0-9.-]+", "_", Path(config_dict["data"]["dataset"]).name)
    return Path("runs") / (f"{data}-{config_dict['model']['name']}-"
                           f"s{config_dict['train']['seed']}-{digest}")


@app.command("train")
def train_cmd(
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset spec: fashion-mnist, "
                                       "digits, cifar10, cifar100, folder:PATH (PATH/train/ and "
                                       "PATH/test/ of class folders, or PATH/<class>/), "
                                       "npz:PATH (x_train, y_train, x_test, y_test, or images, "
                                       "labels); a one-split folder or npz holds out "
                                       "data.test_fraction (0.2) as its test set."),
    model: str | None = typer.Option(None, "--model", help="Model name (classgap list models)."),
    recipe: str | None = typer.Option(None, "--recipe", help="Class-aware recipe METHOD"
                                      "[@SETTING], e.g. ldam-drw-sam or ldam-drw-sam@cifar10-lt "
                                      "(classgap list recipes); the other options override it."),
    loss: str | None = typer.Option(None, "--loss", help="Training loss (classgap list losses);"
                                    " its parameters: --set loss.KEY=VALUE."),
    optim: str | None = typer.Option(None, "--optim", help=f"{OPTIMIZERS.choices()} "
                                     "(classgap list optimizers)."),
    rho: float | None = typer.Option(None, "--rho", help="SAM radius (with --optim sam)."),
    imbalance: float | None = typer.Option(None, "--imbalance", help="Long-tailed training "
                                           "set: ratio n_max / n_min (> 1)."),
    profile: str | None = typer.Option(None, "--profile", help="Long-tail profile: exp or "
                                       "step."),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs."),
    seed: int | None = typer.Option(None, "--seed", help="Run seed (init, order, augment)."),
    aug: list[str] | None = typer.Option(None, "--aug", metavar="NAME=VALUE",
                                         help="Augmentation knob (classgap list augs); "
                                              "repeatable; NAME=\\[v1,v2,...] gives one "
                                              "value per class."),
    lr: float | None = typer.Option(None, "--lr", help="Peak learning rate."),
    weight_decay: float | None = typer.Option(None, "--weight-decay", help="Weight decay."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Training batch size."),
    train_subset: int | None = typer.Option(None, "--train-subset",
                                            help="Stratified training subset size."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where the data lies: the "
                                         "only place looked (it must exist); a relative "
                                         "folder:/npz: PATH is taken inside it."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (default "
                                    "runs/<dataset>-<model>-s<seed>-<config hash>)."),
    config: Path | None = typer.Option(None, "--config", help="TOML config file."),
    set_: list[str] | None = typer.Option(None, "--set", metavar="KEY=VALUE",
                                          help="Any config key, e.g. optim.name=adamw; "
                                               "repeatable."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N, mps."),
    precision: str | None = typer.Option(None, "--precision", help="auto, fp32 or bf16."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace a run directory holding another config."),
    seeds: int = typer.Option(1, "--seeds", help="Train this many seeds (--seed onwards); "
                              "run k goes to OUT/seed<k>."),
    engine: str = typer.Option("auto", "--engine", help="Several seeds: auto (vmap ensemble "
                               "on CUDA, process pool elsewhere), pool or vmap."),
    workers: int = typer.Option(1, "--workers", help="Several seeds, pool engine: processes."),
    threads_per_worker: int | None = typer.Option(None, "--threads-per-worker",
                                                  help="Torch threads per worker process."),
) -> None:
    """Train one model (or several seeds) and write run directories for classgap audit."""
    from classgap.config import check_no_cmd, load_config
    from classgap.data import check_data_dir
    from classgap.train import train
    from classgap.train.recipes import recipe_overrides
    from classgap.train.seeds import train_seeds

    check_data_dir(data_dir, "--data-dir")  # named as typed, before any config layering
    given = {"dataset": dataset, "data_dir": data_dir, "train_subset": train_subset,
             "model": model, "epochs": epochs, "seed": seed, "lr": lr,
             "weight_decay": weight_decay, "batch_size": batch_size, "device": device,
             "precision": precision, "loss": loss, "optim": optim, "rho": rho,
             "imbalance": imbalance, "profile": profile}
    overrides = list(recipe_overrides(recipe)) if recipe is not None else []
    overrides += [f"{_SHORTCUTS[k]}={v}" for k, v in given.items() if v is not None]
    overrides += [f"aug.{a}" for a in aug or []]
    overrides += list(set_ or [])
    cfg = load_config(config, overrides)
    check_no_cmd([cfg], "classgap train")  # only a study's --train-cmd reads cmd.* keys
    out_dir = out if out is not None else default_out_dir(cfg.to_dict())
    if seeds == 1:
        result = train(cfg, out_dir, overwrite=overwrite)
        console.print(render.train_line(result, cfg.train.epochs))
        console.print(cell(f"run directory: {out_dir}"))
        console.print(cell(f"per-class audit: classgap audit {out_dir / 'test.npz'}",
                                  "dim"))
        return
    results = train_seeds(cfg, seeds, out_dir, engine=engine, workers=workers,
                          threads_per_worker=threads_per_worker, overwrite=overwrite)
    console.print(render.seeds_table(results, cfg.train.epochs))
    console.print(cell(f"per-class audit over seeds: classgap audit {out_dir}/seed*/"
                              "test.npz", "dim"))


@app.command("list")
def list_cmd(
    topic: str = typer.Argument(..., help=f"{TOPICS.choices()}.", show_default=False),
) -> None:
    """List the models, augmentation knobs, datasets, study presets, losses or recipes."""
    console.print(render.listing_table(listing(topic)))
