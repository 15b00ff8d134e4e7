"""Stage `export`: the fine-tuned model as SavedModel, LiteRT (TFLite) and ONNX files
that take a resized photo's uint8 pixels and return class probabilities and the
unknown score (classifier/model/unknown.py), in one pass.

Writes models/export/: one file or folder per format in export.formats,
labels.txt (one class per line, in output order) and model.json (classes, image
size, the input contract, the unknown check's threshold). Each format is run on
every test image: metrics/export.json gets its test accuracy, its agreement with
the Keras model (share of images with the same predicted class, or with several
labels per photo the same label set, and with the same unknown verdict), the largest difference of any class probability and of
the score, its size and the median latency of one image on this machine.
Then the model card, models/export/README.md (classifier/report/card.py), from
what the other stages measured.
"""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from classifier import params
from classifier.data import manifest
from classifier.data.inputs import batches
from classifier.errors import run
from classifier.files import read_json, write_json
from classifier.model import backbones, tasks, unknown
from classifier.paths import (
    AUDIT_REPORT,
    CLEAN_REPORT,
    EVAL_REPORT,
    EXPORT,
    EXPORT_REPORT,
    MODEL,
    PLOTS,
    SPLIT_REPORT,
    UNKNOWN,
    UNKNOWN_INFO,
    model_info,
)
from classifier.report import card
from classifier.runtime import formats
from classifier.runtime.checks import check_int8_input, compare, latency_ms, same


def calibration_images(images, size, count):
    """`count` training images spread evenly over the split (which is sorted by class)."""
    paths, labels = manifest.rows(images, "train")
    step = max(1, len(paths) // count)
    data = batches(paths[::step][:count], labels[::step][:count], size, 32)
    return np.concatenate([x.numpy() for x, _ in data]).astype("uint8")


def write_formats(model, names, info, calibration):
    """Export each format and load it back: {name: (path, predict function)}."""
    if EXPORT.exists():
        shutil.rmtree(EXPORT)
    EXPORT.mkdir(parents=True)
    write_json(EXPORT / "model.json", info)
    (EXPORT / "labels.txt").write_text("".join(f"{name}\n" for name in info["classes"]))
    written = {}
    # The SavedModel first: the float LiteRT files are converted from it.
    for name in tqdm(sorted(names, key=lambda name: name != "saved_model"), desc="export", unit="format"):
        saved_model = written["saved_model"][0] if "saved_model" in written else None
        path = formats.export(model, name, EXPORT, calibration, saved_model)
        written[name] = (path, formats.load(path))
    return {name: written[name] for name in names}


def main():
    p = params.load()
    formats.check(p.export.formats)
    check = read_json(UNKNOWN_INFO)
    info = {**read_json(model_info(MODEL)),
            "unknown": {key: check[key] for key in ("method", "k", "threshold", "pass_share")}}
    size = info["image_size"]
    task = tasks.of(p)
    images = manifest.read()
    paths, labels = manifest.rows(images, "test", task.name)
    data = batches(paths, labels, size, p.runtime.batch_size)
    model = unknown.with_score(backbones.load_model(MODEL), backbones.load_model(UNKNOWN))
    calibration = None
    if "tflite_int8" in p.export.formats:
        calibration = calibration_images(images, size, p.export.calibration_images)
    written = write_formats(model, p.export.formats, info, calibration)
    if "tflite_int8" in written:
        check_int8_input(written["tflite_int8"][0])

    predictors = {"keras": model.predict_on_batch} | {name: f for name, (_, f) in written.items()}
    decide = lambda outputs: task.decide(task.calibrated(task.probabilities(outputs), info), info)  # noqa: E731
    predicted, verdicts, largest = compare(predictors, data, len(paths), check["threshold"], decide)
    sample = next(iter(data))[0].numpy().astype("uint8")
    report = {}
    for name, predict in predictors.items():
        path = MODEL if name == "keras" else written[name][0]
        report[name] = {
            "accuracy": float(same(predicted[name], labels).mean()),
            "agreement": float(same(predicted[name], predicted["keras"]).mean()),
            "unknown_agreement": float((verdicts[name] == verdicts["keras"]).mean()),
            "max_abs_diff": largest[name]["probability"],
            "unknown_max_abs_diff": largest[name]["unknown_score"],
            "size_mb": formats.size_mb(path),
            "latency_ms": latency_ms(predict, sample),
        }
        print(f"export: {name:14} accuracy {report[name]['accuracy']:.4f}  agreement {report[name]['agreement']:.4f}  "
              f"unknown agreement {report[name]['unknown_agreement']:.4f}  max |diff| {largest[name]['probability']:.1e}  "
              f"{report[name]['size_mb']:8.2f} MB  {report[name]['latency_ms']:.1f} ms/image")
    write_json(EXPORT_REPORT, report)
    write_card(p, info, report, {name: Path(path).name for name, (path, _) in written.items()})


def write_card(p, info, exported, files):
    scores = read_json(EVAL_REPORT)
    data_name = Path(p.data.local_dir).name if p.data.source == "local" else p.data.source
    card.write(EXPORT / "README.md", info=info, weights=p.model.weights, scores=scores["finetune"],
               recipe=scores["recipe"], split=read_json(SPLIT_REPORT), clean=read_json(CLEAN_REPORT),
               audit=read_json(AUDIT_REPORT), exported=exported, files=files,
               per_class=pd.read_csv(PLOTS / ("per_label_finetune.csv" if p.model.task == "multi_label"
                                              else "per_class_finetune.csv")), data_name=data_name)
    print(f"export: the model card is {EXPORT / 'README.md'}")


if __name__ == "__main__":
    run(main)
