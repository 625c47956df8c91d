"""rattrlib: differentiable attributions, attacks on them, metrics and robust trainers.

One concept per sub-package: :mod:`rattrlib.data`, :mod:`rattrlib.models`, :mod:`rattrlib.attributions`,
:mod:`rattrlib.attacks`, :mod:`rattrlib.metrics`, :mod:`rattrlib.train`, :mod:`rattrlib.results`.
Images are float tensors in [0, 1], NCHW, everywhere.

Importing rattrlib turns on flushing of denormal floats on CPU (``torch.set_flush_denormal(True)``): the
second-order steps (IG-NORM, GALI, ART, IFIA) on *trained* networks produce denormals that made them 3–4× slower
on 2 cores. The flag is per thread and worker threads copy it when they start, so import rattrlib before running
torch ops in a process (as the chapters do).
"""

import torch

torch.set_flush_denormal(True)

__version__ = "0.1.0"
