"""runtime.engine: ONNX Runtime gives TensorFlow's outputs, or is refused."""

from types import SimpleNamespace

import numpy as np
import pytest

from classifier.errors import UserError
from classifier.model import backbones
from classifier.runtime import engines, formats

BATCH = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype="uint8")


@pytest.fixture(scope="module")
def network():
    model = SimpleNamespace(backbone="mobilenetv2", weights="none", image_size=32, alpha=0.35, pooling="avg")
    return backbones.extractor(model)


def test_onnxruntime_gives_tensorflows_outputs(network, capsys):
    forward = engines.forward(network, "onnxruntime", BATCH)
    assert "ONNX Runtime: first batch within" in capsys.readouterr().out
    other = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype="uint8")
    expected = network.predict_on_batch(other)
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(forward(other), expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_an_engine_that_disagrees_with_tensorflow_is_refused(network, monkeypatch):
    monkeypatch.setattr(formats, "load", lambda path: lambda batch: network.predict_on_batch(batch) * 1.01)
    with pytest.raises(UserError, match=r"differs from TensorFlow by 1\.0e-02 .* set runtime\.engine: tensorflow"):
        engines.forward(network, "onnxruntime", BATCH)


def test_tensorflow_engine_is_the_network_itself(network):
    forward = engines.forward(network, "tensorflow", BATCH)
    np.testing.assert_array_equal(forward(BATCH), network.predict_on_batch(BATCH))
