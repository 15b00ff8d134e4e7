"""What runs a frozen network's forward pass: TensorFlow, or ONNX Runtime on the
same network exported by Keras' own `model.export(format="onnx")`.

On a CPU, ONNX Runtime runs the light backbones 2-3 times faster (bench/bench.py,
section 1), after a conversion of a few seconds. TensorFlow stays the default
and the reference: ONNX Runtime is used only after its output on the first
batch matched TensorFlow's.
"""

import numpy as np

from stages import formats
from stages.errors import UserError

# Largest difference allowed on the first batch, relative to its largest output.
TOLERANCE = 1e-4


def forward(network, engine, first, folder):
    """A function (uint8 pixel batch -> outputs) that runs `network` on `engine`,
    checked on the batch `first`; the ONNX file goes into `folder`."""
    if engine == "tensorflow":
        return network.predict_on_batch
    run = formats.load(formats.export(network, "onnx", folder))
    expected, got = network.predict_on_batch(first), run(first)
    difference = float(np.abs(expected - got).max() / max(np.abs(expected).max(), 1e-12))
    if difference > TOLERANCE:
        raise UserError(
            f"features.engine: onnxruntime differs from TensorFlow by {difference:.1e} of the largest "
            f"feature on the first batch (allowed {TOLERANCE:.0e}); set features.engine: tensorflow"
        )
    print(f"ONNX Runtime: first batch within {difference:.1e} of TensorFlow")
    return run
