"""Suite-wide setup: the precision cache of this test session, never the user's.

``train.precision="auto"`` measures each run shape's numeric paths once per machine and caches
the choice (:mod:`classgap.train.precision`). The suite gets a fresh cache directory of its
own, set in the environment so worker processes (the processes and Ray backends, torchrun)
read the same choices as the test that started them.
"""

from __future__ import annotations

import os
import shutil
import tempfile

ENV_CACHE = "CLASSGAP_CACHE_DIR"  # classgap.train.precision.ENV_CACHE (no torch import here)
_CACHE = tempfile.mkdtemp(prefix="classgap-precision-")


def pytest_configure(config: object) -> None:
    os.environ.setdefault(ENV_CACHE, _CACHE)


def pytest_unconfigure(config: object) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)
