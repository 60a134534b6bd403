"""Bring your own trainer: run any training command per grid point and read its predictions.

The command is a template; placeholders name the run's values::

    python train.py --rrc {aug.rrc} --seed {seed} --out {out}

``{seed}``, ``{out}`` (the run directory to write into), ``{run_id}``, any axis key of the
grid point (``{aug.rrc}``) and any key of the resolved config (``{optim.lr}``); ``{{``/``}}``
are literal braces. The template is split into arguments first (``shlex``, no shell) and the
placeholders are filled inside each argument, so a value with spaces stays one argument.

The script's own hyperparameters live in the config's free-form ``cmd`` section: ``--axis
cmd.C=0.01,1`` (or ``--set cmd.C=1``) fills ``{C}``, and ``{cmd.C}`` too. They are part of
each run's config, so each value is its own run id; classgap's trainer reads none of them.

Before any run, :meth:`ExternalTrainer.check` fills the first run's command and looks its
program up (on ``PATH``, or as a path from the working directory): a typo is one error, not
one failed run per grid point.

The program must leave ``test.<ext>`` and ``val.<ext>`` in ``{out}``, in any format
:func:`classgap.audit.io.read_predictions` reads (``.npz`` with ``y_true`` and ``probs`` or
``logits`` is simplest); the validation predictions are what selects the strength. The
trainer then writes ``config.json`` and ``metrics.json`` (accuracies computed from the files)
itself. ``stdout``/``stderr`` go to ``train.log``; on failure, the end of ``stderr`` is the
run's error text in the store. A command that fails saying that no space is left ("No space
left on device", "Disk quota exceeded", "[Errno 28]") raises
:class:`~classgap.errors.DiskFullError` naming ``{out}``: the study stops and gives the run
back rather than fail it (:mod:`classgap.sweep.store`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classgap._files import atomic_write, write_json
from classgap._validation import fail
from classgap.errors import ConfigError, DiskFullError, ExternalTrainerError
from classgap.sweep.grid import RunSpec
from classgap.sweep.store import find_predictions

__all__ = ["ExternalTrainer", "ExternalTrainerError"]

STDERR_TAIL = 2000  # characters of stderr kept as a failed run's error text
_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_BUILTIN = ("seed", "out", "run_id")
#: What a program that failed for want of space prints (strerror of ENOSPC and EDQUOT, Python's
#: "[Errno 28]", SQLite's message).
_DISK_FULL = re.compile(r"No space left on device|Disk quota exceeded|\[Errno 28\]"
                        r"|database or disk is full")




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
    config = spec.config.to_dict()
    for section, table in config.items():
        values.update({f"{section}.{k}": v for k, v in table.items()})
    values.update(config.get("cmd", {}))  # {C} as well as {cmd.C}: the script's own names
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
        """Raise :class:`ConfigError` naming any placeholder a run cannot fill, or the program
        when it is not there (:meth:`check_program`)."""
        spec = specs[0] if specs else None  # every run of a grid has the same keys
        known = _values(spec, Path()) if spec is not None else dict.fromkeys(_BUILTIN)
        for name in self.placeholders():
            if name in known:
                continue
            if "." not in name:  # the script's own parameter, never set
                raise ConfigError(
                    f"--train-cmd: placeholder {{{name}}} has no value; set it with --set "
                    f"cmd.{name}=VALUE or sweep it with --axis cmd.{name}=V1,V2")
            axes = ", ".join(sorted(spec.point)) if spec is not None else "none"
            raise ConfigError(
                f"--train-cmd: unknown placeholder {{{name}}}; use {{seed}}, {{out}}, "
                f"{{run_id}}, an axis key (axes: {axes}), a config key (e.g. {{optim.lr}}) "
                f"or a cmd key ({{NAME}} from --set cmd.NAME=VALUE)")
        self.check_program(spec)

    def check_program(self, spec: RunSpec | None = None) -> str:
        """The path of the template's program (filled for ``spec`` when it has placeholders);
        :class:`ConfigError` when there is none: ``--train-cmd: program 'pyhton' not found``.
        """
        program = self.argv[0]
        if _FIELD.search(program):
            if spec is None:
                return program  # nothing to fill it with: found (or not) when a run starts
            program = self.command(spec, Path())[0]
        env = {**os.environ, **self.env}
        if os.sep in program or (os.altsep and os.altsep in program):
            path = Path(self.cwd, program)  # as subprocess resolves it: from the cwd
            found = str(path) if path.is_file() and os.access(path, os.X_OK) else None
            if found is None and path.is_file():
                raise ConfigError(f"--train-cmd: program {program!r} is not executable")
        else:
            found = shutil.which(program, path=env.get("PATH", os.defpath))
        if found is None:
            raise ConfigError(f"--train-cmd: program {program!r} not found")
        return found

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
            raise ExternalTrainerError(f"--train-cmd: program {argv[0]!r} not found") from None
        except subprocess.TimeoutExpired:
            raise ExternalTrainerError(f"--train-cmd timed out after {self.timeout} s: "
                                       f"{shlex.join(argv)}") from None
        wall = time.perf_counter() - t0
        log = f"$ {shlex.join(argv)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        atomic_write(run_dir / "train.log", log)
        if proc.returncode != 0:
            tail = proc.stderr.strip()[-STDERR_TAIL:] or "(no stderr)"
            if _DISK_FULL.search(tail):  # not the run's fault: the study stops, run kept pending
                raise DiskFullError(run_dir)
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
