"""classgap: which classes pay for a training recipe, and how to fix it.

The audit (``classgap.audit``) works on predictions from any framework::

    >>> import numpy as np
    >>> from classgap.audit import per_class_metrics
    >>> table = per_class_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    >>> table["accuracy"].tolist()
    [0.5, 1.0]
"""

from classgap.errors import ClassgapError, ConfigError, DataFormatError, InputError

__version__ = "0.1.0"

__all__ = ["ClassgapError", "ConfigError", "DataFormatError", "InputError", "__version__"]
