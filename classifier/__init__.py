"""The library the stages call: data, model, training, runtime, report, and the
command-line tools (cli)."""

import os

# TensorFlow's C++ log lines (start-up notes, a harmless graph-attribute
# mismatch) bury the progress bars; real failures still raise in Python.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
