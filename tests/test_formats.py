"""Export formats on small models trained here, in this process."""

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from classifier.model import layers, unknown
from classifier.model.heads import probabilities
from classifier.runtime import formats

SIZE = 16


def coloured(n, seed):
    """Noisy images whose class (0 or 1) is their dominant colour: learnable, not trivially."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    centres = np.array([[170, 90, 80], [90, 100, 160]])[y][:, None, None, :]
    return np.clip(rng.normal(centres, 70, (n, SIZE, SIZE, 3)), 0, 255).astype("uint8"), y


@pytest.fixture(scope="module")
def trained():
    """A small convolutional classifier with VGG16's preprocessing inside."""
    keras.utils.set_random_seed(0)
    x, y = coloured(400, seed=0)
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        layers.Preprocess("caffe"),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ])  # fmt: skip
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x.astype("float32"), y, epochs=15, verbose=0)
    return model


def test_full_integer_model_keeps_float_accuracy(trained, tmp_path):
    x, y = coloured(200, seed=1)
    calibration = coloured(100, seed=2)[0]
    float_path = formats.export(trained, "tflite", tmp_path)
    int8_path = formats.export(trained, "tflite_int8", tmp_path, calibration)

    details = Interpreter(model_path=str(int8_path))
    image, output = details.get_input_details()[0], details.get_output_details()[0]
    assert image["dtype"] == np.uint8 and output["dtype"] == np.uint8
    assert image["quantization"] == (1.0, 0)  # caffe preprocessing inside, and still the raw pixels

    keras_accuracy = (trained.predict(x, verbose=0).argmax(1) == y).mean()
    accuracy = {path.name: (probabilities(formats.load(path)(x)).argmax(1) == y).mean()
                for path in (float_path, int8_path)}
    assert keras_accuracy >= 0.85, keras_accuracy  # the set is learnable
    assert accuracy["model.tflite"] == keras_accuracy
    assert abs(accuracy["model_int8.tflite"] - keras_accuracy) <= 0.03, accuracy


def test_sigmoid_model_exports_one_probability_per_class_and_the_unknown_score(tmp_path):
    keras.utils.set_random_seed(0)
    image = keras.Input((SIZE, SIZE, 3))
    colour = keras.layers.GlobalAveragePooling2D()(image)  # the features: each image's mean colour
    sigmoid = keras.Model(image, keras.layers.Dense(1, activation="sigmoid", name="classes")(colour))
    x = coloured(6, seed=3)[0]
    second = sigmoid.predict(x, verbose=0)
    check = unknown.check(x[:4].mean(axis=(1, 2)), k=1)  # the first four are the training photos
    exported = formats.load(formats.export(unknown.with_score(sigmoid, check), "onnx", tmp_path))(x)
    np.testing.assert_allclose(exported["probabilities"], np.hstack([1 - second, second]), atol=1e-6)
    np.testing.assert_allclose(exported["unknown_score"][:4], 0, atol=1e-6)  # each its own nearest
    assert (exported["unknown_score"][4:] > 1e-5).all()


@pytest.mark.parametrize("name", ["tflite", "tflite_dynamic"])
def test_float_litert_from_the_saved_model_is_the_file_keras_converts(trained, tmp_path, name):
    saved_model = formats.export(trained, "saved_model", tmp_path / "reused")
    reused = formats.export(trained, name, tmp_path / "reused", saved_model=saved_model)
    (tmp_path / "own").mkdir()
    own = formats.export(trained, name, tmp_path / "own")
    assert reused.read_bytes() == own.read_bytes()
    x = coloured(4, seed=4)[0]
    np.testing.assert_allclose(formats.load(reused)(x), trained.predict(x, verbose=0), atol=1e-5)


def test_saved_model_serves_the_model_and_lists_its_variables(trained, tmp_path):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(formats.export(trained, "saved_model", tmp_path)))
    x = coloured(4, seed=5)[0]
    expected = trained.predict(x, verbose=0)
    np.testing.assert_allclose(loaded.serve(x).numpy(), expected, atol=1e-6)
    served = loaded.signatures["serving_default"](image=tf.constant(x))
    np.testing.assert_allclose(next(iter(served.values())).numpy(), expected, atol=1e-6)
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        assert [v.shape for v in getattr(loaded, name)] == [v.shape for v in getattr(trained, name)], name
