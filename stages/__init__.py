"""Pipeline stages, each run by DVC as `python -m stages.<name>`."""

import os

# TensorFlow's C++ log lines (start-up notes, a harmless graph-attribute
# mismatch) bury the progress bars; real failures still raise in Python.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
