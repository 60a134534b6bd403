"""The vmap engine: M models of one architecture as stacked weights, and SGD over them.

Training many small models one after another leaves a GPU idle: a small CNN's kernels are
launch-bound. Here the M members' parameters *and buffers* are stacked along a new leading
axis (:func:`torch.func.stack_module_state`) and one forward runs all members with
``vmap(functional_call)``: convolutions become grouped convolutions, the whole step is one set
of kernel launches. Each member keeps its own initialisation, batch order, augmentation,
learning rate and weight decay, so member ``i`` follows exactly the trajectory that training it
alone would (``tests/train/test_ensemble.py`` checks this in float64 to 1e-10).

BatchNorm: the running statistics are stacked buffers passed with ``in_dims=0``; BatchNorm's
in-place running-stat update under ``vmap`` lands in each member's slice (checked in the tests
against separate modules in torch 2.13), so no functional re-implementation is needed.

Limits (torch 2.11-2.13): ``channels_last`` inputs raise "NYI: querying is_contiguous inside
of vmap", and bf16 autocast breaks BatchNorm's backward under vmap on CUDA ("Expected
running_mean to have type BFloat16"), so the engine runs contiguous float32 (or float64).
:func:`classgap.train.ensemble.train_ensemble` drives it from configs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from classgap._validation import fail

__all__ = ["ModelEnsemble", "StackedSGD", "member_cross_entropy"]


class ModelEnsemble:
    """M copies of one architecture with stacked weights, run as one model.

    Parameters live in :attr:`params` as leaf tensors of shape ``(M, *shape)`` with
    ``requires_grad``; buffers (BatchNorm running statistics) in :attr:`buffers`, also
    ``(M, *shape)``. Build it with :meth:`from_models`; get ordinary modules back with
    :meth:`unstack`.

    Examples
    --------
    >>> members = [nn.Sequential(nn.Flatten(), nn.Linear(4, 3)) for _ in range(2)]
    >>> ens = ModelEnsemble.from_models(members)
    >>> ens(torch.randn(2, 5, 1, 2, 2)).shape      # (M, B, C, H, W) -> (M, B, K)
    torch.Size([2, 5, 3])
    >>> [type(m).__name__ for m in ens.unstack()]
    ['Sequential', 'Sequential']
    """

    def __init__(self, template: nn.Module, params: dict[str, Tensor],
                 buffers: dict[str, Tensor]) -> None:
        # The template holds the architecture only; its tensors live on the meta device, so
        # functional_call always reads the stacked tensors and a stale weight cannot leak in.
        self.template = template.to("meta")
        self.params = params
        self.buffers = buffers
        self.training = template.training

    @classmethod
    def from_models(cls, models: Sequence[nn.Module]) -> ModelEnsemble:
        """Stack ``models`` (same class, same parameter names and shapes) into an ensemble.

        The members' tensors are copied; the given modules are left untouched.
        """
        models = list(models)
        if not models:
            raise fail("models", "hold at least one module", "an empty sequence")
        first = models[0]
        shapes = {n: t.shape for n, t in _tensors(first)}
        for i, m in enumerate(models[1:], start=1):
            if type(m) is not type(first):
                raise fail(f"models[{i}]", f"be a {type(first).__name__} like models[0]",
                           type(m).__name__)
            other = {n: t.shape for n, t in _tensors(m)}
            if other != shapes:
                diff = sorted(set(other.items()) ^ set(shapes.items()), key=str)[0][0]
                raise fail(f"models[{i}]", "have the parameter names and shapes of models[0]",
                           f"a difference at {diff!r}")
        params, buffers = stack_module_state(models)  # type: ignore[arg-type]
        template = copy.deepcopy(first)
        template.train(first.training)
        return cls(template, params, buffers)

    @property
    def num_members(self) -> int:
        """Number of members M."""
        return next(iter(self.params.values())).shape[0]

    @property
    def device(self) -> torch.device:
        return next(iter(self.params.values())).device

    def named_parameters(self) -> Iterator[tuple[str, Tensor]]:
        """``(name, stacked tensor (M, *shape))`` pairs, names as in a single member."""
        return iter(self.params.items())

    def parameters(self) -> list[Tensor]:
        """The stacked parameter tensors, each ``(M, *shape)`` with ``requires_grad``."""
        return list(self.params.values())

    def train(self, mode: bool = True) -> ModelEnsemble:
        """Set training mode (BatchNorm batch statistics, dropout) for every member."""
        self.training = mode
        self.template.train(mode)
        return self

    def eval(self) -> ModelEnsemble:
        """Set evaluation mode for every member."""
        return self.train(False)

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> ModelEnsemble:
        """Move (and cast floating tensors of) the ensemble; parameters stay leaves."""
        def move(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        with torch.no_grad():
            self.params = {n: move(p).detach().requires_grad_(p.requires_grad)
                           for n, p in self.params.items()}
            self.buffers = {n: move(b) for n, b in self.buffers.items()}
        return self

    def _member_forward(self, params: dict[str, Tensor], buffers: dict[str, Tensor],
                        x: Tensor) -> Tensor:
        return functional_call(self.template, (params, buffers), (x,))

    def forward(self, x: Tensor) -> Tensor:
        """Logits of every member on its own batch.

        Parameters
        ----------
        x : Tensor, shape (M, B, C, H, W)
            Member ``i`` sees ``x[i]``.

        Returns
        -------
        Tensor, shape (M, B, K)
        """
        if x.ndim < 2 or x.shape[0] != self.num_members:
            raise fail("x", f"have shape (M={self.num_members}, B, ...)",
                       f"shape {tuple(x.shape)}")
        # randomness="different": each member draws its own dropout masks, as it would alone.
        return vmap(self._member_forward, in_dims=(0, 0, 0), randomness="different")(
            self.params, self.buffers, x)

    __call__ = forward

    def state_dicts(self) -> list[dict[str, Tensor]]:
        """One ``state_dict``-like mapping per member (detached copies)."""
        tensors = {**self.params, **self.buffers}
        return [{n: t[i].detach().clone() for n, t in tensors.items()}
                for i in range(self.num_members)]

    def unstack(self) -> list[nn.Module]:
        """M ordinary modules holding the members' current weights and buffers."""
        out = []
        for state in self.state_dicts():
            model = copy.deepcopy(self.template).to_empty(device=self.device)
            with torch.no_grad():
                for name, value in state.items():
                    target = (model.get_parameter(name) if name in self.params
                              else model.get_buffer(name))
                    target.copy_(value)
            out.append(model.train(self.training))
        return out


def _tensors(model: nn.Module) -> Iterator[tuple[str, Tensor]]:
    yield from model.named_parameters()
    yield from model.named_buffers()


def member_cross_entropy(logits: Tensor, targets: Tensor, *,
                         label_smoothing: float = 0.0) -> Tensor:
    """Each member's mean cross-entropy, ``(M, B, K)`` against ``(M, B)`` labels or
    ``(M, B, K)`` probabilities -> ``(M,)``.

    Summing the result gives a loss whose gradient with respect to member ``i``'s parameters is
    exactly member ``i``'s own mean-loss gradient (the members share no parameter). As the
    trainer's ``loss_fn``, the loss is computed in the logits' dtype promoted to float32.
    """
    m, b, k = logits.shape
    flat = logits.reshape(m * b, k)
    if not flat.is_floating_point() or flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()
    per_sample = F.cross_entropy(flat, targets.reshape(m * b, *targets.shape[2:]),
                                 reduction="none", label_smoothing=label_smoothing)
    return per_sample.view(m, b).mean(dim=1)


def _per_member(value: float | Sequence[float] | Tensor, name: str, m: int) -> Tensor:
    """A scalar or M values as a float64 CPU tensor of shape (M,)."""
    t = torch.as_tensor(value, dtype=torch.float64).detach().cpu().flatten()
    if t.numel() == 1:
        t = t.expand(m).clone()
    if t.shape != (m,) or not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise fail(name, f"be a number >= 0 or {m} such numbers (one per member)",
                   value if not isinstance(value, Tensor) else value.tolist())
    return t


class StackedSGD:
    """SGD with momentum/Nesterov and per-member learning rate and weight decay.

    Step for member ``i`` of every parameter (the update of :class:`torch.optim.SGD`)::

        d = grad + wd_i * p                     # wd_i = 0 for exempt (norm / bias) parameters
        buf = d  (first step)  or  mu * buf + (1 - dampening) * d
        d = d + mu * buf  (nesterov)  or  buf
        p = p - lr_i * d

    Parameters
    ----------
    named_params : mapping of str to Tensor (M, *shape)
        The stacked parameters, e.g. ``dict(ensemble.named_parameters())``.
    lr, weight_decay : float or sequence of M floats or Tensor (M,)
        One value for all members or one per member; change ``lr`` with :meth:`set_lr`.
    momentum, dampening : float
    nesterov : bool
    decay_filter : callable (name, tensor of one member) -> bool, optional
        Whether a parameter is weight-decayed; default: only tensors with ndim >= 2
        (conv / linear weights, not biases or norm scales).
    """

    def __init__(self, named_params: Mapping[str, Tensor], *,
                 lr: float | Sequence[float] | Tensor,
                 momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
                 weight_decay: float | Sequence[float] | Tensor = 0.0,
                 decay_filter: Callable[[str, Tensor], bool] | None = None) -> None:
        self.params = dict(named_params)
        if not self.params:
            raise fail("named_params", "hold at least one parameter", "an empty mapping")
        first = next(iter(self.params.values()))
        self.num_members = m = first.shape[0]
        if nesterov and (momentum <= 0 or dampening != 0):
            raise fail("nesterov", "come with momentum > 0 and dampening 0",
                       f"momentum {momentum}, dampening {dampening}")
        self.momentum, self.dampening, self.nesterov = float(momentum), float(dampening), nesterov
        wd = _per_member(weight_decay, "weight_decay", m)
        keep = decay_filter or (lambda name, p: p.ndim >= 2)
        # Per parameter, the (M, 1, ..., 1) decay factors: zero for exempt parameters, so the
        # update stays one broadcast multiply-add whatever the member.
        self._wd = {n: (wd if keep(n, p[0]) else torch.zeros(m, dtype=torch.float64))
                    .to(p.device, p.dtype).view(m, *([1] * (p.ndim - 1)))
                    for n, p in self.params.items()}
        self._lr: dict[str, Tensor] = {}
        self.set_lr(lr)
        self.state: dict[str, Tensor] = {}

    @property
    def lr(self) -> Tensor:
        """Current per-member learning rates, shape (M,)."""
        return self._lr_values.clone()

    def set_lr(self, lr: float | Sequence[float] | Tensor) -> None:
        """Set the learning rate of every member (a scalar or M values)."""
        self._lr_values = _per_member(lr, "lr", self.num_members)
        m = self.num_members
        # One host-to-device copy per (device, dtype), then free views per parameter: the
        # trainer loop calls this every step.
        on: dict[tuple[torch.device, torch.dtype], Tensor] = {}
        for n, p in self.params.items():
            key = (p.device, p.dtype)
            if key not in on:
                on[key] = self._lr_values.to(p.device, p.dtype)
            self._lr[n] = on[key].view(m, *([1] * (p.ndim - 1)))

    def zero_grad(self) -> None:
        """Drop the gradients (set them to None, as ``torch.optim`` does by default)."""
        for p in self.params.values():
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        # foreach ops: a handful of kernel launches per step instead of ~8 per parameter; the
        # (M, 1, ..) rates broadcast in their (C++) slow path, still without a Python loop.
        names = [n for n, p in self.params.items() if p.grad is not None]
        params = [self.params[n] for n in names]
        grads = [p.grad for p in params if p.grad is not None]
        d = list(torch._foreach_mul(params, [self._wd[n] for n in names]))
        torch._foreach_add_(d, grads)  # grad + wd * p
        if self.momentum != 0:
            old = [(self.state[n], t) for n, t in zip(names, d, strict=True) if n in self.state]
            if old:
                bufs, ds = [b for b, _ in old], [t for _, t in old]
                torch._foreach_mul_(bufs, self.momentum)
                torch._foreach_add_(bufs, ds, alpha=1 - self.dampening)
            for name, t in zip(names, d, strict=True):
                if name not in self.state:  # as torch: the first buffer is d itself, undamped
                    self.state[name] = t.clone()
            bufs = [self.state[n] for n in names]
            if self.nesterov:
                torch._foreach_add_(d, bufs, alpha=self.momentum)
            else:
                d = bufs
        torch._foreach_sub_(params, torch._foreach_mul(d, [self._lr[n] for n in names]))
