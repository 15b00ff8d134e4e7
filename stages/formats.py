"""The model formats that `export` writes and `predict` reads.

Every format loads as the same thing: a function from a batch of preprocessed
images (float32, N x size x size x 3) to the model's outputs, so export can check
each one against the Keras model and predict can use any of them.
"""

from pathlib import Path

import numpy as np

from stages.errors import UserError
from stages.params import require, subset

# export.formats name -> (file written in the export folder, Keras export format, converter options)
FORMATS = {
    "saved_model": ("saved_model", "tf_saved_model", {}),
    "tflite": ("model.tflite", "litert", {}),
    # Weights stored as int8, activations kept in float: no calibration images needed.
    "tflite_int8": ("model_int8.tflite", "litert", {"optimizations": ["DEFAULT"]}),
    "onnx": ("model.onnx", "onnx", {}),
}
READABLE = ".keras, .tflite, .onnx or a SavedModel folder"


def check(names):
    """export.formats must name formats this module writes; raises UserError."""
    require("export", "formats", names, subset(*FORMATS))


def export(model, name, folder):
    """Write `model` in format `name` into `folder`; return the path written."""
    import tensorflow as tf

    file_name, keras_format, options = FORMATS[name]
    path = Path(folder) / file_name
    if "optimizations" in options:
        options = {"optimizations": [getattr(tf.lite.Optimize, o) for o in options["optimizations"]]}
    # Keras' ONNX export refuses a model that was loaded but never called.
    model(np.zeros((1, *model.input_shape[1:]), "float32"))
    model.export(str(path), format=keras_format, verbose=False, **options)
    return path


def size_mb(path):
    path = Path(path)
    files = path.rglob("*") if path.is_dir() else [path]
    return round(sum(f.stat().st_size for f in files if f.is_file()) / 2**20, 2)


def load(path):
    """A function batch -> outputs for the model at `path`, whatever its format."""
    path = Path(path)
    if path.suffix == ".keras" and path.is_file():
        import keras

        return keras.models.load_model(path).predict_on_batch
    if path.suffix == ".tflite" and path.is_file():
        return tflite_runner(path)
    if path.suffix == ".onnx" and path.is_file():
        return onnx_runner(path)
    if (path / "saved_model.pb").is_file():
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))  # kept alive: `serve` needs its variables
        return lambda batch: loaded.serve(batch).numpy()
    raise UserError(f"{path}: not a model file this tool reads ({READABLE})")


def tflite_runner(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    image, output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(batch):
        # The model is exported with batch size 1; resize only when the batch changes.
        if tuple(interpreter.get_input_details()[0]["shape"]) != batch.shape:
            interpreter.resize_tensor_input(image["index"], batch.shape)
            interpreter.allocate_tensors()
        interpreter.set_tensor(image["index"], np.ascontiguousarray(batch, dtype="float32"))
        interpreter.invoke()
        return interpreter.get_tensor(output["index"]).copy()

    interpreter.allocate_tensors()
    return run


def onnx_runner(path):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: np.asarray(batch, dtype="float32")})[0]
