"""Bring your own trainer: run any training command per grid point and read its predictions.

The command is a template; placeholders name the run's values::

    python train.py --rrc {aug.rrc} --seed {seed} --out {out}

``{seed}``, ``{out}`` (the run directory to write into), ``{run_id}``, any axis key of the
grid point (``{aug.rrc}``) and any key of the resolved config (``{optim.lr}``); ``{{``/``}}``
are literal braces. The template is split into arguments first (``shlex``, no shell) and the
placeholders are filled inside each argument, so a value with spaces stays one argument.

The program must leave ``test.<ext>`` and ``val.<ext>`` in ``{out}``, in any format
:func:`classgap.audit.io.read_predictions` reads (``.npz`` with ``y_true`` and ``probs`` or
``logits`` is simplest); the validation predictions are what selects the strength. The
trainer then writes ``config.json`` and ``metrics.json`` (accuracies computed from the files)
itself. ``stdout``/``stderr`` go to ``train.log``; on failure, the end of ``stderr`` is the
run's error text in the store.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classgap._files import write_json
from classgap._validation import fail
from classgap.errors import ConfigError, ExternalTrainerError
from classgap.sweep.grid import RunSpec
from classgap.sweep.store import find_predictions

__all__ = ["ExternalTrainer", "ExternalTrainerError"]

STDERR_TAIL = 2000  # characters of stderr kept as a failed run's error text
_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_BUILTIN = ("seed", "out", "run_id")




def _text(value: Any) -> str:
    """A value as a command-line argument: ``0.35``, ``3``, ``true``, ``none``, ``[0.5,1.0]``."""
    if isinstance(value, str):
        return value
    if value is None:
        return "none"
    if isinstance(value, bool) or isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"))
    return repr(value) if isinstance(value, float) else str(value)


def _values(spec: RunSpec, out: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for section, table in spec.config.to_dict().items():
        values.update({f"{section}.{k}": v for k, v in table.items()})
    values.update(spec.point)
    values.update({"seed": spec.seed, "out": str(out), "run_id": spec.run_id})
    return values


class ExternalTrainer:
    """``train_fn`` that runs a command template per run (see the module docstring).

    Parameters
    ----------
    template : str
        The command, e.g. ``"python train.py --rrc {aug.rrc} --seed {seed} --out {out}"``.
    cwd : path, optional
        Working directory of the command; default: the current directory when created.
    timeout : float, optional
        Seconds before the command is killed and the run failed.
    env : mapping, optional
        Extra environment variables (``CLASSGAP_RUN_ID`` and ``CLASSGAP_OUT`` are always set).
    """

    def __init__(self, template: str, *, cwd: str | os.PathLike[str] | None = None,
                 timeout: float | None = None, env: Mapping[str, str] | None = None):
        try:
            self.argv = shlex.split(template)
        except ValueError as exc:
            raise fail("--train-cmd", f"be a valid command line ({exc})", template,
                       error=ConfigError) from None
        if not self.argv:
            raise fail("--train-cmd", "name a command", template, error=ConfigError)
        self.template = template
        self.cwd = str(Path(cwd or os.getcwd()).resolve())
        self.timeout = timeout
        self.env = dict(env or {})

    def __repr__(self) -> str:
        return f"ExternalTrainer({self.template!r})"

    def placeholders(self) -> list[str]:
        """The placeholder names of the template, in order of appearance."""
        return [m.group(1) for arg in self.argv for m in _FIELD.finditer(arg)
                if m.group(1) is not None]

    def check(self, specs: Sequence[RunSpec]) -> None:
        """Raise :class:`ConfigError` naming any placeholder a run cannot fill."""
        names = self.placeholders()
        first: list[RunSpec | None] = [*specs[:1]] or [None]
        for spec in first:  # every run of a grid has the same keys
            known = _values(spec, Path()) if spec is not None else dict.fromkeys(_BUILTIN)
            for name in names:
                if name not in known:
                    axes = ", ".join(sorted(spec.point)) if spec is not None else "none"
                    raise ConfigError(
                        f"--train-cmd: unknown placeholder {{{name}}}; use {{seed}}, {{out}}, "
                        f"{{run_id}}, an axis key (axes: {axes}) or a config key "
                        f"(e.g. {{optim.lr}})")

    def command(self, spec: RunSpec, out: Path) -> list[str]:
        """The argument list for one run."""
        values = _values(spec, out)

        def fill(match: re.Match[str]) -> str:
            token = match.group(0)
            if token in ("{{", "}}"):
                return token[0]
            if match.group(1) not in values:
                self.check([spec])  # raises naming it
            return _text(values[match.group(1)])

        return [_FIELD.sub(fill, arg) for arg in self.argv]

    def __call__(self, spec: RunSpec, run_dir: Path) -> dict[str, Any]:
        run_dir = Path(run_dir).resolve()
        argv = self.command(spec, run_dir)
        env = {**os.environ, **self.env, "CLASSGAP_RUN_ID": spec.run_id,
               "CLASSGAP_OUT": str(run_dir)}
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(argv, cwd=self.cwd, env=env, capture_output=True, text=True,
                                  timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise ExternalTrainerError(f"--train-cmd: command not found: {argv[0]!r}") from None
        except subprocess.TimeoutExpired:
            raise ExternalTrainerError(f"--train-cmd timed out after {self.timeout} s: "
                                       f"{shlex.join(argv)}") from None
        wall = time.perf_counter() - t0
        log = f"$ {shlex.join(argv)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        (run_dir / "train.log").write_text(log, encoding="utf-8")  # the dir commits atomically
        if proc.returncode != 0:
            tail = proc.stderr.strip()[-STDERR_TAIL:] or "(no stderr)"
            raise ExternalTrainerError(f"--train-cmd exited with status {proc.returncode}: "
                                       f"{shlex.join(argv)}\n{tail}")
        from classgap.audit.io import read_predictions  # lazy: pandas/pyarrow load slowly

        metrics: dict[str, Any] = {"wall_time": round(wall, 3), "command": argv}
        for split in ("val", "test"):
            path = find_predictions(run_dir, split)
            if path is None:
                raise ExternalTrainerError(
                    f"--train-cmd left no {split} predictions in {{out}} = {run_dir}; write "
                    f"{split}.npz (y_true and probs or logits), .csv, .parquet or .pt")
            pred = read_predictions(path)
            metrics[f"{split}_accuracy"] = float(np.mean(pred.y_pred == pred.y_true))
            metrics[f"n_{split}"] = int(pred.y_true.size)
        write_json(run_dir / "config.json", spec.config.to_dict())
        write_json(run_dir / "metrics.json", metrics)  # last: the run is complete
        return metrics
