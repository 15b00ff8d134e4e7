"""Stage `export`: the fine-tuned model as SavedModel, TFLite (float and int8) and ONNX.

Each format is checked against the Keras model on the test images: the largest
absolute difference of any class probability, and the share of images where the
predicted class agrees. Writes models/export/ (one file or folder per format,
and model.json for predict) and metrics/export.json (those figures, file sizes
and the median latency of one image on this machine).
"""

import shutil
import statistics
import time

import keras
import numpy as np
from tqdm import tqdm

from stages import formats, manifest, params
from stages.errors import run
from stages.heads import probabilities
from stages.inputs import batches
from stages.paths import EXPORT, EXPORT_REPORT, MODEL, model_info, read_json, write_json

LATENCY_IMAGES = 20


def latency_ms(predict, images):
    """Median milliseconds for one image (a batch of one), after a warm-up call."""
    predict(images[:1])
    times = []
    for image in images[:LATENCY_IMAGES]:
        start = time.perf_counter()
        predict(image[None])
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 3)


def write_formats(model, names):
    """Export each format and load it back: {name: (path, predict function)}."""
    if EXPORT.exists():
        shutil.rmtree(EXPORT)
    EXPORT.mkdir(parents=True)
    shutil.copy(model_info(MODEL), model_info(EXPORT / "any"))
    written = {}
    for name in tqdm(names, desc="export", unit="format"):
        path = formats.export(model, name, EXPORT)
        written[name] = (path, formats.load(path))
    return written


def compare(model, written, data, count):
    """Per format: max |probability difference| and class agreement vs. Keras."""
    largest = dict.fromkeys(written, 0.0)
    agreeing = dict.fromkeys(written, 0)
    with tqdm(total=count, desc="parity", unit="img") as bar:
        for images, _ in data:
            images = images.numpy()
            expected = probabilities(model.predict_on_batch(images))
            for name, (_, predict) in written.items():
                got = probabilities(predict(images))
                largest[name] = max(largest[name], float(np.abs(got - expected).max()))
                agreeing[name] += int((got.argmax(1) == expected.argmax(1)).sum())
            bar.update(len(images))
    return largest, {name: agreeing[name] / count for name in written}


def main():
    p = params.load()
    formats.check(p.export.formats)
    info = read_json(model_info(MODEL))
    paths, labels = manifest.rows(manifest.read(), "test")
    data = batches(paths, labels, info["backbone"], info["image_size"], p.features.batch_size)
    # compile=False: no optimizer state, which a served model does not need.
    model = keras.models.load_model(MODEL, compile=False)
    written = write_formats(model, p.export.formats)

    largest, agreement = compare(model, written, data, len(paths))
    sample = next(iter(data))[0].numpy()
    report = {"keras": {"size_mb": formats.size_mb(MODEL), "latency_ms": latency_ms(model.predict_on_batch, sample)}}
    for name, (path, predict) in written.items():
        report[name] = {
            "size_mb": formats.size_mb(path),
            "latency_ms": latency_ms(predict, sample),
            "max_abs_diff": largest[name],
            "agreement": agreement[name],
        }
        print(f"export: {name:12} {report[name]['size_mb']:8.2f} MB  max |diff| {largest[name]:.2e}  "
              f"agreement {agreement[name]:.4f}  {report[name]['latency_ms']:.1f} ms/image")
    write_json(EXPORT_REPORT, report)


if __name__ == "__main__":
    run(main)
