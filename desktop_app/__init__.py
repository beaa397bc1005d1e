"""Triptych: base, instruct and reasoning language models side by side."""

import os

__version__ = "0.1.0"
APP_NAME = "Triptych"

# numpy's matrices here are small (the RLHF window's votes and reward model: at most 64
# answers): one BLAS thread does them in milliseconds, where a pool of BLAS threads spins
# against the model processes for the same cores (a reward-model fit on 200 votes: 0.013 s
# against 0.26 s on two busy cores). Set before numpy loads; the environment's value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
