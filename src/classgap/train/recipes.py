"""Named class-aware training recipes: a *method* on a *setting*, as config overrides.

A recipe is written ``METHOD`` or ``METHOD@SETTING`` (``classgap train --recipe
ldam-drw-sam@cifar10-lt``). The setting fixes the data, model and schedule; the method fixes the
loss, the deferred re-weighting (DRW) epoch, the head and SAM's ρ, with the values of the
authors' code where they published one (Cao et al. 2019, LDAM-DRW; Rangwani et al. 2022, SAM
for class imbalance; see ``shared/spec/losses.md``):

- ``cifar10-lt`` / ``cifar100-lt``: the reference CIFAR-LT recipe (ResNet-32, 200 epochs, SGD lr
  0.1, momentum 0.9, weight decay 2e-4 on every parameter, batch 128, 5 warm-up epochs, lr ×
  0.01 at epoch 160 and again at 180, pad-crop 4 + flip, imbalance ρ = 100, DRW from epoch
  160). For a GPU; CIFAR is brought by the user (``data.data_dir``, see ``classgap data info``).
- ``fmnist-lt`` (the default): Fashion-MNIST-LT (ρ = 100, exponential profile) sized for a
  2-core CPU: the small CNN, 16 epochs, cosine lr, DRW from epoch 12 (the reference switches at
  80% of training too), and SAM at its own default radius 0.05 (:data:`SAM_DEFAULT_RHO`).
- ``fmnist``: balanced Fashion-MNIST, a 10k-image stratified subset (the study's small-data
  regime, about the size of Fashion-MNIST-LT), for the MR² comparison.
- ``fmnist-study``: the default study's regime at its CV-selected strength (the MLP on 5k
  images, 40 epochs, label smoothing 0.3, every other regularizer off), where Shirt pays: the
  setting of the worst-class reweighting methods (``clam@fmnist-study``, ...).

Settings give the base; the recipe's own keys, then the user's ``--set`` values, win.
Accuracy is that of the last epoch: nothing here selects an epoch on the test set.

>>> [o for o in recipe_overrides("ldam-drw-sam") if o.startswith(("loss.", "optim.rho"))]
['loss.name=ldam', 'loss.max_m=0.5', 'loss.s=30', 'loss.drw_epoch=12', 'optim.rho=0.05']
>>> recipe_overrides("ldam-drw-sam@cifar10-lt")[-1]
'optim.rho=0.8'
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TypeVar

from classgap.errors import ConfigError

__all__ = ["METHODS", "SETTINGS", "Method", "Setting", "list_recipes", "recipe_overrides"]

T = TypeVar("T")


@dataclass(frozen=True)
class Setting:
    """Data, model and schedule of a recipe; ``drw_epoch`` is where DRW starts here."""

    name: str
    description: str
    overrides: tuple[str, ...]
    drw_epoch: int
    dataset: str  # "cifar10" / "cifar100" pick the ρ column of a SAM method
    sam_rho: float | None = None  # one ρ for every SAM method here (None: the method's)


#: SAM's own default radius (Foret et al. 2021), used by the CPU-sized settings: the CIFAR-LT
#: radii (up to 0.8, tuned for ResNet-32 over 200 epochs) broke the small CNN trained for 16
#: epochs on Fashion-MNIST-LT (LDAM-DRW+SAM 80.2% vs 89.3% at 0.05; bench/RESULTS.md).
SAM_DEFAULT_RHO = 0.05

_CIFAR_LT = ("model.name=resnet32", "train.epochs=200", "optim.name=sgd", "optim.lr=0.1",
             "optim.momentum=0.9", "optim.nesterov=false", "optim.weight_decay=2e-4",
             "optim.wd_exempt_norm_bias=false", "optim.batch_size=128", "schedule.name=step",
             "schedule.warmup_epochs=5", "schedule.milestones=[160, 180]",
             "schedule.gamma=0.01", "aug.crop=4", "aug.flip=0.5", "data.imbalance=100",
             "data.profile=exp", "data.val_size=0")
_FMNIST = ("data.dataset=fashion-mnist", "model.name=cnn", "train.epochs=16",
           "optim.batch_size=128", "optim.lr=0.05", "optim.weight_decay=5e-4",
           "schedule.name=cosine")

#: The default study's regime (``classgap.sweep.presets.MLP_5K``, kept equal by a test) at its
#: CV-selected label smoothing.
_FMNIST_STUDY = ("data.dataset=fashion-mnist", "model.name=mlp", "optim.weight_decay=0",
                 "optim.nesterov=false", "optim.batch_size=128", "optim.lr=0.05",
                 "schedule.name=cosine", "data.train_subset=5000", "data.val_size=5000",
                 "train.epochs=40", "train.eval_every=40", "schedule.warmup_epochs=0",
                 "optim.label_smoothing=0.3")

SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("cifar10-lt", "reference CIFAR-10-LT (rho=100): ResNet-32, 200 epochs, GPU",
            ("data.dataset=cifar10", *_CIFAR_LT), 160, "cifar10"),
    Setting("cifar100-lt", "reference CIFAR-100-LT (rho=100): ResNet-32, 200 epochs, GPU",
            ("data.dataset=cifar100", *_CIFAR_LT), 160, "cifar100"),
    Setting("fmnist-lt", "Fashion-MNIST-LT (rho=100, exp), small CNN, 16 epochs: a 2-core CPU",
            (*_FMNIST, "data.imbalance=100", "data.profile=exp"), 12, "cifar10", SAM_DEFAULT_RHO),
    Setting("fmnist", "balanced Fashion-MNIST, 10k-image subset, small CNN, 16 epochs (MR²)",
            (*_FMNIST, "data.train_subset=10000"), 12, "cifar10", SAM_DEFAULT_RHO),
    Setting("fmnist-study", "the default study's regime at its selected label smoothing 0.3 "
            "(MLP, 5k images, 40 epochs): where Shirt pays", _FMNIST_STUDY, 32, "cifar10",
            SAM_DEFAULT_RHO),
)}


@dataclass(frozen=True)
class Method:
    """Loss keys (``loss.*``, ``model.head``), whether DRW is on, and SAM's ρ (C-10, C-100)."""

    name: str
    description: str
    keys: tuple[str, ...] = ()
    drw: bool = False
    rho: tuple[float, float] | None = None  # SAM ρ on (CIFAR-10, CIFAR-100)-like settings


_LDAM = ("loss.name=ldam", "loss.max_m=0.5", "loss.s=30", "model.head=cosine")
_VS = ("loss.name=vs", "loss.gamma=0.3", "loss.tau=1.0")

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("ce", "plain cross-entropy (the baseline)"),
    Method("ce-drw", "cross-entropy, class-balanced re-weighting from the DRW epoch", drw=True),
    Method("ce-sam", "cross-entropy with SAM", rho=(0.1, 0.2)),
    Method("ce-drw-sam", "CE + DRW with SAM", drw=True, rho=(0.5, 0.8)),
    Method("ldam-drw", "LDAM margins (max_m 0.5, s 30, cosine head) + DRW", _LDAM, drw=True),
    Method("ldam-drw-sam", "LDAM + DRW with SAM (Rangwani et al. 2022)", _LDAM, drw=True,
           rho=(0.8, 0.8)),
    Method("vs", "vector-scaling loss (gamma 0.3, tau 1)", _VS),
    Method("vs-sam", "VS loss with SAM", _VS, rho=(0.8, 0.8)),
    Method("la", "logit-adjusted cross-entropy (tau 1)", ("loss.name=logit_adjusted",
                                                          "loss.tau=1.0")),
    Method("bs", "balanced softmax", ("loss.name=balanced_softmax",)),
    Method("focal", "focal loss (gamma 1, as in the LDAM-DRW code)", ("loss.name=focal",
                                                                       "loss.gamma=1.0")),
    Method("cb", "class-balanced cross-entropy (beta 0.9999) from the start",
           ("loss.name=class_balanced", "loss.beta=0.9999")),
    Method("mr2", "MR² margins from feature spread + representation term (lam 0.1)",
           ("loss.name=mr2", "loss.lam=0.1")),
    Method("clam", "CLAM: class weights × exp(-train accuracy) each epoch, clipped (TMLR 2025)",
           ("loss.reweight=clam",)),
    Method("tilted", "tilted CE: class weights mixed with the softmax of the class losses",
           ("loss.reweight=tilted",)),
    Method("ggf", "generalized Gini: class weights discount^rank of the class losses",
           ("loss.reweight=ggf",)),
    Method("apstar", "AP*: the worst 10% of classes by loss raised, with a step counter",
           ("loss.reweight=apstar",)),
    Method("poly", "polynomially weighted CE (theta 0.8 + (1 - p)^2) · CE",
           ("loss.name=poly", "loss.theta=0.8", "loss.gamma=2.0")),
)}

DEFAULT_SETTING = "fmnist-lt"


def _lookup(kind: str, name: str, table: dict[str, T]) -> T:
    if name in table:
        return table[name]
    close = difflib.get_close_matches(name, list(table), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown recipe {kind} {name!r}; valid {kind}s: {', '.join(table)}{hint}")


def recipe_overrides(recipe: str) -> tuple[str, ...]:
    """Config overrides of ``METHOD[@SETTING]`` (setting default ``fmnist-lt``), setting first.

    SAM methods set ``optim.name=sam`` and the ρ of the setting's dataset column (or the
    setting's own ``sam_rho``: SAM's default 0.05 on the CPU-sized settings); DRW methods
    set ``loss.drw_epoch`` to the setting's DRW epoch. ρ stays constant from epoch 0, as in the
    reference CIFAR-LT runs; ``--set optim.drw_rho=R`` raises it when DRW starts (the
    ImageNet-LT / iNaturalist recipe).
    """
    text = str(recipe).strip().lower()
    method_name, _, setting_name = text.partition("@")
    method = _lookup("method", method_name, METHODS)
    setting = _lookup("setting", setting_name or DEFAULT_SETTING, SETTINGS)
    out = [*setting.overrides, *method.keys]
    if method.drw:
        out.append(f"loss.drw_epoch={setting.drw_epoch}")
    if method.rho is not None:
        rho = method.rho[1] if setting.dataset == "cifar100" else method.rho[0]
        if setting.sam_rho is not None:
            rho = setting.sam_rho
        out += ["optim.name=sam", f"optim.rho={rho}"]
    return tuple(dict.fromkeys(out))


def list_recipes() -> list[dict[str, str]]:
    """One row per method and one per setting, for ``classgap list recipes``."""
    rows = [{"name": m.name, "kind": "method", "description": m.description}
            for m in METHODS.values()]
    rows += [{"name": f"@{s.name}", "kind": "setting", "description": s.description}
             for s in SETTINGS.values()]
    return rows
