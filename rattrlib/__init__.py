"""rattrlib: differentiable attributions, attacks on them, metrics and robust trainers.

One concept per sub-package: :mod:`rattrlib.data`, :mod:`rattrlib.models`, :mod:`rattrlib.attributions`,
:mod:`rattrlib.attacks`, :mod:`rattrlib.metrics`, :mod:`rattrlib.train`, :mod:`rattrlib.results`.
Images are float tensors in [0, 1], NCHW, everywhere.
"""

__version__ = "0.1.0"
