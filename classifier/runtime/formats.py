"""The model formats that `export` writes and `predict` reads.

Every exported model takes what classifier/data/inputs.py's INPUT describes (uint8 RGB
pixels, N x size x size x 3) and does the backbone's preprocessing inside, and
every format loads as the same thing: a function from such a batch to its
outputs, {"probabilities": one per class, "unknown_score": one per photo} for
the classifier (classifier/model/unknown.py), an array for a network with one
output (the frozen passes of classifier/runtime/engines.py).
"""

import functools
import os
import tempfile
from pathlib import Path

import numpy as np

from classifier.errors import UserError
from classifier.params import require, subset

# export.formats name -> the file written in the export folder
FORMATS = {
    "saved_model": "saved_model",
    "tflite": "model.tflite",
    # int8 weights, float activations and input: no calibration, any CPU.
    "tflite_dynamic": "model_dynamic.tflite",
    # int8 weights and activations, uint8 input and output: integer-only
    # accelerators (Edge TPU, NPUs, microcontrollers); calibrated on training images.
    "tflite_int8": "model_int8.tflite",
    "onnx": "model.onnx",
}
READABLE = ".keras, .tflite, .onnx or a SavedModel folder"


def check(names):
    """export.formats must name formats this module writes; raises UserError."""
    require("export", "formats", names, subset(*FORMATS))


def export(model, name, folder, calibration=None, saved_model=None):
    """Write `model` in format `name` into `folder`, taking uint8 pixels; return the path.

    `calibration`: uint8 training images, for tflite_int8's activation ranges.
    `saved_model`: the folder where `model`'s saved_model format is written already:
    the float LiteRT formats are converted from it instead of from a new one.
    """
    path = Path(folder) / FORMATS[name]
    if name == "saved_model":
        write_saved_model(model, path, "uint8")
    elif name == "onnx":
        write_onnx(model, path)
    elif saved_model and name != "tflite_int8":
        path.write_bytes(litert(saved_model, name, calibration))
    else:
        # As Keras' LiteRT export does (keras/src/export/litert.py): a SavedModel, then
        # its conversion. tflite_int8 is calibrated on float pixels; its converter
        # makes the input uint8.
        with tempfile.TemporaryDirectory() as temporary:
            write_saved_model(model, temporary, "float32" if name == "tflite_int8" else "uint8")
            path.write_bytes(litert(temporary, name, calibration))
    return path


def pixels(model, dtype):
    import tensorflow as tf

    return tf.TensorSpec((None, *model.input_shape[1:]), dtype, name="image")


def write_saved_model(model, path, dtype):
    """What model.export(format="tf_saved_model") writes, without its search of every
    layer for lookup tables (this model has none), which traces each nested model
    again: a third of the time. The variables are listed as Keras' export lists them."""
    import keras

    archive = keras.export.ExportArchive()
    archive.add_endpoint("serve", functools.partial(model.__call__, training=False),
                         input_signature=[pixels(model, dtype)])
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        archive.add_variable_collection(name, getattr(model, name))
    archive.write_out(str(path), verbose=False)


def write_onnx(model, path):
    """What model.export(format="onnx") writes: tf2onnx's conversion of the forward
    pass, after Keras' own patch of tf2onnx for NumPy 2 (keras is pinned); from the
    forward pass alone, as write_saved_model, for the same reason."""
    import tensorflow as tf
    import tf2onnx
    from keras.src.export.tf2onnx_lib import patch_tf2onnx

    signature = [pixels(model, "uint8")]
    forward = tf.function(functools.partial(model.__call__, training=False), input_signature=signature,
                          autograph=False)
    patch_tf2onnx()
    tf2onnx.convert.from_function(forward, signature, output_path=str(path))


def litert(saved_model, name, calibration):
    """The LiteRT file for format `name`, converted from a SavedModel with Keras' settings."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    converter.experimental_enable_resource_variables = True
    if name == "tflite_dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if name == "tflite_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.uint8
    return converter.convert()


def representative(calibration):
    """tflite_int8's calibration samples: the training images and two more."""
    # One black and one white pixel pin the input's range to 0..255 (whole black
    # and white images would also widen every later layer's range), so that the
    # uint8 input is the pixels themselves (scale 1, zero point 0). A plain grey
    # image, unlike every photo, stretches the unknown score's range past the
    # threshold (calibrated on training photos alone, every score above theirs
    # would read as their largest), and its flat activations widen little else.
    samples = calibration.astype("float32")
    samples[0, 0, 0], samples[0, 0, 1] = 0, 255
    samples = np.concatenate([samples, np.full_like(samples[:1], 128)])
    return lambda: ([sample[None]] for sample in samples)


def size_mb(path):
    path = Path(path)
    files = path.rglob("*") if path.is_dir() else [path]
    return round(sum(f.stat().st_size for f in files if f.is_file()) / 2**20, 2)


def load(path):
    """A function (uint8 batch -> outputs) for the model at `path`, whatever its format."""
    path = Path(path)
    if path.suffix == ".keras" and path.is_file():
        from classifier.model.backbones import load_model

        return load_model(path).predict_on_batch
    if path.suffix == ".tflite" and path.is_file():
        return tflite_runner(path)
    if path.suffix == ".onnx" and path.is_file():
        return onnx_runner(path)
    if (path / "saved_model.pb").is_file():
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))  # kept alive: `serve` needs its variables
        return lambda batch: as_numpy(loaded.serve(batch))
    raise UserError(f"{path}: not a model file this tool reads ({READABLE})")


def as_numpy(outputs):
    if isinstance(outputs, dict):
        return {name: value.numpy() for name, value in outputs.items()}
    return outputs.numpy()


def named(names, values):
    """One output as it is; several as {name: value}."""
    return values[0] if len(values) == 1 else dict(zip(names, values))


def tflite_runner(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    image = interpreter.get_input_details()[0]
    # By the signature's names: LiteRT's own order of the outputs is not the model's.
    outputs = interpreter.get_signature_runner().get_output_details()

    def read(output):
        result = interpreter.get_tensor(output["index"])
        scale, zero_point = output["quantization"]
        return (result.astype("float32") - zero_point) * scale if scale else result.copy()

    def run(batch):
        # The model is exported with batch size 1; resize only when the batch changes.
        if tuple(interpreter.get_input_details()[0]["shape"]) != batch.shape:
            interpreter.resize_tensor_input(image["index"], batch.shape)
            interpreter.allocate_tensors()
        interpreter.set_tensor(image["index"], np.ascontiguousarray(batch, dtype=image["dtype"]))
        interpreter.invoke()
        return named(list(outputs), [read(output) for output in outputs.values()])

    interpreter.allocate_tensors()
    return run


def onnx_runner(path):
    import onnxruntime

    # One thread per core, and no spinning between calls: tf.data decodes the
    # next batch on the same cores meanwhile.
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name, outputs = session.get_inputs()[0].name, [output.name for output in session.get_outputs()]
    return lambda batch: named(outputs, session.run(None, {name: np.asarray(batch, dtype="uint8")}))
