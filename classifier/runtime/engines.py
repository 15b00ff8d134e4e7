"""What runs a frozen network's forward pass: TensorFlow, or ONNX Runtime on the
same network exported to ONNX (classifier/runtime/formats.py).

On a CPU, ONNX Runtime runs the light backbones 2-3 times faster (bench/bench.py,
section 1), after a conversion of a few seconds. TensorFlow stays the reference
(`runtime.engine: auto` picks it where ONNX Runtime was not measured faster),
and ONNX Runtime is used only after its output on the first batch matched
TensorFlow's. `extract` streams a forward pass into a memory-mapped .npy (the
features; fine-tuning's views at the cut).
"""

import tempfile

import numpy as np
from numpy.lib.format import open_memmap
from tqdm import tqdm

from classifier.errors import UserError
from classifier.runtime import formats

# Largest difference allowed on the first batch, relative to its largest output.
TOLERANCE = 1e-4


def forward(network, engine, first):
    """A function (uint8 pixel batch -> outputs) that runs `network` on `engine`,
    checked on the batch `first`."""
    if engine == "tensorflow":
        return network.predict_on_batch
    with tempfile.TemporaryDirectory() as folder:  # the session keeps the model in memory
        run = formats.load(formats.export(network, "onnx", folder))
    difference = max(relative_difference(network.predict_on_batch(first), run(first)))
    if difference > TOLERANCE:
        raise UserError(
            f"runtime.engine: onnxruntime differs from TensorFlow by {difference:.1e} of the largest "
            f"feature on the first batch (allowed {TOLERANCE:.0e}); set runtime.engine: tensorflow"
        )
    print(f"ONNX Runtime: first batch within {difference:.1e} of TensorFlow")
    return run


def relative_difference(expected, got):
    """Per output (an array, or a dict of them), the largest difference relative to the largest value."""
    if not isinstance(expected, dict):
        expected, got = {"": expected}, {"": got}
    return [float(np.abs(expected[name] - got[name]).max() / max(np.abs(expected[name]).max(), 1e-12))
            for name in expected]


def stream_to_npy(forward, data, count, path, dtype, desc, *, start=0, record=lambda rows: None):
    """forward(images) of `data` into rows start.. of the .npy at `path` (created at the
    first batch when start is 0); `record(rows)` after every batch, once the rows are on disk."""
    features = open_memmap(path, mode="r+") if start else None
    row = start
    with tqdm(total=count, initial=start, desc=desc, unit="img") as bar:
        for images, _ in data:
            batch = forward(images)
            if features is None:
                features = open_memmap(path, mode="w+", dtype=dtype, shape=(count, *batch.shape[1:]))
            features[row : row + len(batch)] = batch
            features.flush()
            row += len(batch)
            record(row)
            bar.update(len(batch))
    return features.shape if features is not None else (count,)
