"""Hessian-vector products of a model's loss, by double backpropagation.

The Hessian ``H`` is that of a scalar loss with respect to the model's *trainable* parameters
(``requires_grad``), seen as one flat vector of length ``n`` in ``model.parameters()`` order.
``H @ v`` costs about two backward passes per batch and never forms ``H`` (``n × n``)::

    g  = ∂L/∂θ            (autograd.grad with create_graph=True: g stays differentiable)
    Hv = ∂(g · v)/∂θ      (a second autograd.grad of the scalar g · v)

The model runs in **eval mode** while a product is computed (its mode is restored afterwards):
BatchNorm then uses its running statistics and dropout is off, so the loss is a deterministic
function of the weights alone. In train mode each batch would be normalised by its own
statistics, the loss would depend on how samples are grouped into batches, and the
"Hessian" would be that of a different function at every call.

>>> import torch
>>> model = torch.nn.Linear(3, 2).double()
>>> x, y = torch.randn(5, 3, dtype=torch.float64), torch.tensor([0, 1, 0, 1, 1])
>>> hvp = make_hvp(model, (x, y))
>>> hvp.n, tuple(hvp(torch.ones(hvp.n, dtype=torch.float64)).shape)
(8, (8,))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from classgap._validation import fail

__all__ = ["HessianVectorProduct", "LossFn", "make_hvp", "trainable_parameters"]

#: ``loss_fn(logits (B, K), targets (B,)) -> scalar``: the *mean* loss of one batch.
LossFn = Callable[[Tensor, Tensor], Tensor]
Batch = tuple[Tensor, Tensor]


def trainable_parameters(model: nn.Module) -> tuple[nn.Parameter, ...]:
    """The parameters the Hessian is taken over: those with ``requires_grad``, in order."""
    return tuple(p for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True, eq=False)
class HessianVectorProduct:
    """``hvp(v) -> H @ v`` for the loss of ``model`` averaged over ``batches``.

    Build it with :func:`make_hvp`. The loss is the sample-weighted mean of the batch losses,
    ``L = Σ_b (B_b / N) · loss_fn(model(x_b), y_b)``, which equals the mean loss over all N
    samples whatever the batch sizes (for a per-sample-mean ``loss_fn``).

    Attributes
    ----------
    model : nn.Module
    batches : tuple of (x, y)
        Inputs ``(B, ...)`` and targets ``(B,)``, already on the parameters' device.
    loss_fn : LossFn
    params : tuple of Tensor
        The trainable parameters; ``v`` is split into their shapes in this order.
    n : int
        Number of trainable scalars, the length of ``v``.
    dtype, device
        Of the parameters; ``v`` is cast to them and ``H @ v`` is returned in them.
    """

    model: nn.Module
    batches: tuple[Batch, ...]
    loss_fn: LossFn
    params: tuple[Tensor, ...]
    n: int
    dtype: torch.dtype
    device: torch.device

    def __call__(self, v: Tensor) -> Tensor:
        """``H @ v`` for ``v`` of shape (n,); returns shape (n,) in the parameters' dtype."""
        if v.shape != (self.n,):
            raise fail("v", f"have shape ({self.n},)", f"shape {tuple(v.shape)}")
        v = v.to(device=self.device, dtype=self.dtype)
        # v as one view per parameter: (n,) -> [shape of p for p in params]
        pieces = [chunk.view_as(p) for chunk, p in
                  zip(torch.split(v, [p.numel() for p in self.params]), self.params, strict=True)]
        total = sum(len(y) for _, y in self.batches)
        out = torch.zeros(self.n, dtype=self.dtype, device=self.device)
        was_training = self.model.training
        self.model.eval()  # running BN statistics, no dropout: L is a function of θ alone
        try:
            with torch.enable_grad():
                for x, y in self.batches:
                    loss = self.loss_fn(self.model(x), y) * (len(y) / total)
                    grads = torch.autograd.grad(loss, self.params, create_graph=True,
                                                allow_unused=True)
                    dot = sum(((g * vp).sum() for g, vp in zip(grads, pieces, strict=True)
                               if g is not None), torch.zeros((), dtype=self.dtype,
                                                              device=self.device))
                    if not dot.requires_grad:  # loss linear in θ (or constant): H = 0
                        continue
                    hv = torch.autograd.grad(dot, self.params, allow_unused=True)
                    out += torch.cat([torch.zeros(p.numel(), dtype=self.dtype,
                                                  device=self.device) if h is None
                                      else h.reshape(-1) for h, p in
                                      zip(hv, self.params, strict=True)])
        finally:
            self.model.train(was_training)
        return out


def _cross_entropy(label_smoothing: float) -> LossFn:
    def loss(logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    return loss


def make_hvp(model: nn.Module, batches: Batch | Sequence[Batch], *,
             loss_fn: LossFn | None = None,
             label_smoothing: float = 0.0) -> HessianVectorProduct:
    """The Hessian-vector product of a model's mean loss over one batch or a list of batches.

    Parameters
    ----------
    model : nn.Module
        Evaluated in eval mode during each product (module docstring); not modified.
    batches : (x, y) or sequence of (x, y)
        ``x`` (B, ...) inputs as the model takes them, ``y`` (B,) int64 targets; moved to the
        device of the parameters, ``x`` cast to their floating dtype.
    loss_fn : callable, optional
        ``loss_fn(logits (B, K), y (B,)) -> scalar`` batch-mean loss; default cross-entropy.
    label_smoothing : float
        Of the default cross-entropy (ignored with ``loss_fn``).

    Returns
    -------
    HessianVectorProduct
        Callable ``v (n,) -> H @ v (n,)`` with ``n``, ``dtype`` and ``device`` attributes.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(2, 2).double()
    >>> _ = torch.nn.init.zeros_(model.bias)  # x = 0 below: logits 0, softmax (1/2, 1/2)
    >>> hvp = make_hvp(model, [(torch.zeros(3, 2, dtype=torch.float64), torch.tensor([0, 1, 1]))])
    >>> hvp(torch.eye(6, dtype=torch.float64)[4]).tolist()  # bias block: diag(p) - p pᵀ
    [0.0, 0.0, 0.0, 0.0, 0.25, -0.25]
    """
    params = trainable_parameters(model)
    if not params:
        raise fail("model", "have trainable parameters (requires_grad=True)",
                   f"{type(model).__name__} with none")
    if isinstance(batches, tuple) and len(batches) == 2 and isinstance(batches[0], Tensor):
        batches = [batches]  # one (x, y) pair
    batch_list = list(batches)  # type: ignore[arg-type]
    if not batch_list:
        raise fail("batches", "hold at least one (x, y) batch", "an empty sequence")
    first = params[0]
    moved = []
    for i, batch in enumerate(batch_list):
        if not (isinstance(batch, tuple | list) and len(batch) == 2
                and all(isinstance(t, Tensor) for t in batch)):
            raise fail("batches", "hold (x, y) pairs of tensors", f"{type(batch).__name__} at {i}")
        x, y = batch
        if len(x) != len(y) or len(y) == 0:
            raise fail("batches", "hold non-empty x and y of equal length",
                       f"lengths {len(x)} and {len(y)} at {i}")
        x = x.to(device=first.device, dtype=first.dtype if x.is_floating_point() else x.dtype)
        moved.append((x, y.to(first.device)))
    return HessianVectorProduct(
        model=model, batches=tuple(moved),
        loss_fn=loss_fn if loss_fn is not None else _cross_entropy(label_smoothing),
        params=params, n=sum(p.numel() for p in params), dtype=first.dtype,
        device=first.device)
