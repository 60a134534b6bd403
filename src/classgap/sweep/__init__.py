"""Sweeps: grids of runs, a resumable crash-safe store, and backends that train them.

``Grid(...).runs()`` → :class:`RunSpec` list; :class:`Store` holds a study directory;
:func:`run_grid` trains what is not done yet (``local``, ``processes`` or ``ray``), with the
classgap trainer or any command (:class:`ExternalTrainer`).
"""

from classgap.sweep.backends import BACKENDS, GridSummary, default_train, run_grid
from classgap.sweep.external import ExternalTrainer, ExternalTrainerError
from classgap.sweep.grid import MODES, Axis, Grid, RunSpec, load_grid_toml, parse_axis, run_id
from classgap.sweep.integrity import DamagedRunWarning
from classgap.sweep.store import STATUSES, Store, StoreError, find_predictions

__all__ = [
    "BACKENDS",
    "MODES",
    "STATUSES",
    "Axis",
    "DamagedRunWarning",
    "ExternalTrainer",
    "ExternalTrainerError",
    "Grid",
    "GridSummary",
    "RunSpec",
    "Store",
    "StoreError",
    "default_train",
    "find_predictions",
    "load_grid_toml",
    "parse_axis",
    "run_grid",
    "run_id",
]
