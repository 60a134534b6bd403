"""classgap in the training loops people already use.

:class:`PredictionRecorder` collects a plain PyTorch loop's logits and labels batch by batch
and writes classgap prediction files; :func:`check_drops` is ``classgap compare --fail-on-drop``
as a function, for a gate at the end of training. Lightning and Hugging Face ``Trainer``
callbacks build on these two.
"""

from classgap.integrations.recorder import DropGate, PredictionRecorder, check_drops

__all__ = ["DropGate", "PredictionRecorder", "check_drops"]
