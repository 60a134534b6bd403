"""SAM: sharpness-aware minimization (Foret et al. 2021) as a wrapper over any torch optimizer.

One SAM step on a batch, as used for class imbalance (Rangwani et al. 2022):

1. the caller computes the loss at ``w`` and calls ``backward()``: ``g = ∇L(w)``;
2. ``first_step``: ``ε = ρ · g / (‖g‖₂ + 1e-12)`` with the global L2 norm over all parameters
   (ASAM, ``adaptive=True``: ``ε = ρ · w² ⊙ g / ‖|w| ⊙ g‖₂``), save ``w``, set ``w ← w + ε``;
3. the loss is recomputed on the **same batch with the same criterion** and back-propagated:
   ``∇L(w + ε)``;
4. ``second_step``: restore ``w``, then the base optimizer steps with the gradient taken at
   ``w + ε`` (momentum and weight decay stay inside the base optimizer).

:meth:`SAM.step` runs 2-4 given a closure that does 3; step 1 stays with the caller, who
also gets the unperturbed loss for logging. BatchNorm running statistics update in both
forward passes, as in the reference code.

SAM and its base optimizer share ``param_groups`` and ``state``, so an LR scheduler built on
the SAM object drives the base optimizer, and :meth:`SAM.state_dict` is the base optimizer's
(momentum buffers included) plus each group's ``rho`` / ``adaptive``. bf16 autocast works
unchanged; fp16 with ``GradScaler`` is not supported (the scaler cannot unscale the second
pass).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from classgap._validation import fail
from classgap.errors import ConfigError, InputError
from classgap.optim.rho import check_rho

__all__ = ["SAM"]

EPS = 1e-12  # added to ‖g‖ so a zero gradient gives ε = 0, not NaN (reference value)


def _check_adaptive(value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail("adaptive", "be True or False", value, error=ConfigError)
    return value


class SAM(torch.optim.Optimizer):
    """Sharpness-aware minimization around a base optimizer.

    Parameters
    ----------
    params : iterable of Tensor or dict
        Parameters or parameter groups, as for any torch optimizer. A group may set its own
        ``rho`` and ``adaptive`` (ε then uses the group's ρ with the global norm).
    base_optimizer : type
        A ``torch.optim.Optimizer`` subclass (the class, e.g. ``torch.optim.SGD``); it is
        built on the same parameter groups with ``base_kwargs``.
    rho : float
        Neighbourhood radius, >= 0; ``rho=0`` is exactly the base optimizer (at twice the
        cost). Settable between steps through :attr:`rho`.
    adaptive : bool
        ASAM: scale the perturbation by ``|w|`` per coordinate (use a larger ρ, e.g. 2).
    **base_kwargs
        Passed to ``base_optimizer`` (``lr``, ``momentum``, ``weight_decay``...).

    Examples
    --------
    >>> model = torch.nn.Linear(3, 2)
    >>> opt = SAM(model.parameters(), torch.optim.SGD, rho=0.1, lr=0.1, momentum=0.9)
    >>> x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    >>> def closure():  # the second pass: same batch, same criterion
    ...     loss = torch.nn.functional.cross_entropy(model(x), y)
    ...     loss.backward()
    ...     return loss
    >>> opt.zero_grad()
    >>> loss = closure()  # first pass at w: done by the caller
    >>> loss_at_w_eps = opt.step(closure)
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type[torch.optim.Optimizer],
                 rho: float = 0.05, adaptive: bool = False, **base_kwargs: Any) -> None:
        if not (isinstance(base_optimizer, type)
                and issubclass(base_optimizer, torch.optim.Optimizer)
                and not issubclass(base_optimizer, SAM)):
            raise fail("base_optimizer",
                       "be a torch.optim.Optimizer subclass other than SAM (the class, e.g. "
                       "torch.optim.SGD, not an instance)", base_optimizer, error=ConfigError)
        rho = check_rho(rho)
        adaptive = _check_adaptive(adaptive)
        self._w_old: dict[Tensor, Tensor] = {}  # w saved by first_step, restored by second_step
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **base_kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        # one set of groups and one state for both: LR schedulers, rho schedules and
        # checkpoints see what the base optimizer uses
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state
        self.defaults.update(self.base_optimizer.defaults)

    # -- configuration ---------------------------------------------------------------------------
    @property
    def rho(self) -> float:
        """ρ of the first parameter group; setting it sets every group's (validated)."""
        return float(self.param_groups[0]["rho"])

    @rho.setter
    def rho(self, value: float) -> None:
        value = check_rho(value)
        for group in self.param_groups:
            group["rho"] = value

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (validating its ``rho`` / ``adaptive``) to SAM and the base optimizer."""
        if "rho" in param_group:
            param_group["rho"] = check_rho(param_group["rho"])
        if "adaptive" in param_group:
            _check_adaptive(param_group["adaptive"])
        if not hasattr(self, "base_optimizer"):  # during __init__: groups before the base
            super().add_param_group(param_group)
            return
        param_group.setdefault("rho", self.defaults["rho"])
        param_group.setdefault("adaptive", self.defaults["adaptive"])
        self.base_optimizer.add_param_group(param_group)  # appends to the shared list

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a :meth:`state_dict` (a plain base-optimizer one also works: default ρ)."""
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups  # load made new group dicts
        self.state = self.base_optimizer.state
        for group in self.param_groups:
            group.setdefault("rho", self.defaults["rho"])
            group.setdefault("adaptive", self.defaults["adaptive"])

    # -- the two half-steps ----------------------------------------------------------------------
    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move to ``w + ε`` using the gradients in ``p.grad`` (parameters without one stay).

        Raises :class:`InputError` when no parameter has a gradient (``backward()`` was not
        called) or when the weights are already perturbed.
        """
        if self._w_old:
            raise InputError("SAM.first_step() must be followed by second_step() before the "
                             "next first_step(); got two first_step() calls in a row")
        # (param, its gradient, its group's rho, adaptive); parameters without a grad stay
        items = [(p, p.grad, g["rho"], g["adaptive"])
                 for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not items:
            raise InputError("SAM.first_step() needs gradients: call loss.backward() before "
                             "first_step() / step(closure); got no parameter with a .grad")
        norm = _grad_norm([(p, grad, adaptive) for p, grad, _, adaptive in items])
        for p, grad, rho, adaptive in items:
            e = grad * (rho / (norm + EPS)).to(p.device)  # 0-dim scale: keeps grad's dtype
            if adaptive:
                e.mul_(p.square())  # ASAM: ρ · w² ⊙ g / ‖|w| ⊙ g‖
            self._w_old[p] = p.detach().clone()
            p.add_(e)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore ``w`` and let the base optimizer step with the gradients taken at ``w + ε``.

        Raises :class:`InputError` when :meth:`first_step` has not been called.
        """
        if not self._w_old:
            raise InputError("SAM.second_step() must follow first_step(); got no perturbed "
                             "weights to restore")
        self._restore()
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """``first_step(zero_grad=True)``; ``closure()`` at ``w + ε``; ``second_step()``.

        The caller must already have run the first forward/backward at ``w`` (gradients in
        ``p.grad``). ``closure`` recomputes the loss on the same batch with the same criterion
        and calls ``backward()`` (it need not zero gradients: ``first_step`` did); it runs with
        grad enabled. If it raises, the weights are restored to ``w`` before re-raising.
        Gradients are left in place afterwards (the ones at ``w + ε``): zero them before the
        next batch.

        Returns
        -------
        Any
            What ``closure`` returned (the loss at ``w + ε``).
        """
        if closure is None or not callable(closure):
            raise fail("closure", "be a callable that recomputes the loss on the same batch "
                       "and calls backward() (SAM needs a second pass)", closure)
        self.first_step(zero_grad=True)
        try:
            with torch.enable_grad():
                loss = closure()
        except BaseException:
            with torch.no_grad():
                self._restore()  # never leave the model at w + ε
            raise
        self.second_step()
        return loss

    def _restore(self) -> None:
        for p, w in self._w_old.items():
            p.copy_(w)  # copy_, not .data =: keeps the storage other views may share
        self._w_old.clear()


def _grad_norm(items: list[tuple[Tensor, Tensor, bool]]) -> Tensor:
    """Global L2 norm of every ``g`` (``|w| ⊙ g`` when adaptive), on the first one's device.

    ``items`` holds ``(param, grad, adaptive)``. Norms accumulate in float32 at least, so
    bf16/fp16 gradients do not overflow the sum of squares; float64 stays float64.
    """
    device = items[0][1].device
    acc = torch.float32
    for _, grad, _ in items:
        acc = torch.promote_types(acc, grad.dtype)
    norms = [torch.linalg.vector_norm(grad * p.abs() if adaptive else grad, 2, dtype=acc)
             .to(device) for p, grad, adaptive in items]
    return torch.linalg.vector_norm(torch.stack(norms), 2)
