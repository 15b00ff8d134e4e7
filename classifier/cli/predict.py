"""Label new images: `python -m classifier.cli.predict PATH [PATH ...]` (files, folders, globs).

Reads any format that `export` writes (--model models/export/model.tflite, ...).
Prints one JSON line per image, in input order: {"path", "label", "confidence",
"unknown", "unknown_score"} (and "top_k" with --top-k K, "explanation" with
--explain DIR); for a model of several labels per photo, "labels" (each one
over its threshold, possibly none) and "scores" (every label's) instead of
"label" and "confidence"; or {"path", "error"} for a file that cannot be read; exits 1 if
any failed. "unknown" is true for a photo unlike the training photos (its
score above the threshold in model.json: classifier/model/unknown.py); the
label stays, or is null with --reject-unknown. A name that is
not UTF-8 is printed with each such byte as %XX, and the exact name follows
as "path_base64". Confidences are calibrated with the temperature in
model.json; --tta averages each image with its mirror image; --explain writes
a Grad-CAM figure per image.

Files are untrusted: each is checked as `clean` checks it (at most
--max-bytes read, pixel counts from the headers before any decoding, then a
full decode) and decoded and resized on its own, at most DECODERS at a time,
so one hostile file is one error line and memory is bounded
(docs/untrusted-input.md). Model files are trusted: a SavedModel or .keras
file can run code.
"""

import argparse
import io
import itertools
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from classifier.data.images import DECODERS, MAX_BYTES, PILLOW_MAX_PIXELS, BadImage, normalize
from classifier.data.walk import expand
from classifier.errors import UserError, run
from classifier.files import read_json
from classifier.params import PARAMS_FILE
from classifier.paths import MODEL, UNKNOWN, UNKNOWN_INFO, exact_name, model_info, printable
from classifier.runtime import formats

CHUNK = 32


def load_predictor(path):
    """A function (uint8 pixels -> {"probabilities", "unknown_score"}) for any exported
    format, model.json (with the unknown check's threshold), and the Keras
    classifier for Grad-CAM (None for the other formats)."""
    info_path = model_info(path)
    if not Path(path).exists() or not info_path.exists():
        raise UserError(f"no trained model at {path}: run `dvc repro` first")
    info = read_json(info_path)
    if Path(path).suffix != ".keras":
        return formats.load(path), info, None
    from classifier.model import unknown
    from classifier.model.backbones import load_model

    # models/ keeps the check beside the model (stages/unknown.py); an export holds it inside.
    folder = Path(path).parent
    info["unknown"] = read_json(folder / UNKNOWN_INFO.name)
    classifier = load_model(path)
    return unknown.with_score(classifier, load_model(folder / UNKNOWN.name)).predict_on_batch, info, classifier


def limits():
    """clean's min_side, max_pixels and max_bytes from params.yaml, or no size
    minimum and the defaults."""
    if PARAMS_FILE.exists():
        from classifier import params

        clean = params.load().clean
        return clean.min_side, clean.max_pixels, clean.max_bytes
    return 1, PILLOW_MAX_PIXELS, MAX_BYTES


def pixels(path, size, min_side, max_pixels, max_bytes):
    """The image's uint8 pixels as every model takes them, or raise BadImage."""
    import tensorflow as tf

    from classifier.data.inputs import decode

    jpeg = normalize(path, min_side, max_pixels, max_bytes)[0]
    try:
        return decode(jpeg, size).numpy()
    except tf.errors.OpError as error:
        raise BadImage("corrupt", f"TensorFlow's decoder: {error.message}") from None


def classify(model, info, images, flip):
    """Calibrated class probabilities (or label scores) of uint8 images (flip:
    averaged with their mirror images), and their unknown scores (of the images as
    they are, as the threshold was set)."""
    task = task_of(info)
    outputs = model(images)
    scores = task.probabilities(outputs["probabilities"])
    if flip:
        scores = (scores + task.probabilities(model(images[:, :, ::-1].copy())["probabilities"])) / 2
    return task.calibrated(scores, info), np.asarray(outputs["unknown_score"], "float64").reshape(-1)


def task_of(info):
    from classifier.model import tasks

    return tasks.of_model(info)


def verdict(info, score):
    """The line's "unknown" and "unknown_score"."""
    return {"unknown": bool(score > info["unknown"]["threshold"]), "unknown_score": round(float(score), 6)}


def explain(keras_model, info, images, readable, args, first):
    """One Grad-CAM figure per (path, line) of `readable` into args.explain, numbered
    from `first`; its path goes into the line."""
    from classifier.report import figures, gradcam

    folder = Path(args.explain)
    folder.mkdir(parents=True, exist_ok=True)
    heatmaps = gradcam.heatmaps(keras_model, images)[0]
    for number, ((path, line), heatmap) in enumerate(zip(readable, heatmaps), first):
        # The photo as checked and normalised (it passed once: it passes again).
        with Image.open(io.BytesIO(normalize(path, 1, args.max_pixels, args.max_bytes)[0])) as original:
            original = original.convert("RGB")
        name = Path(line["path"])
        line["explanation"] = str(folder / f"{number:05d}-{name.stem}.png")
        figures.explanation(original, heatmap, f"{name.name}: {task_of(info).summary(line)}", line["explanation"])


def describe(path):
    """The start of a path's line: its printable name, and its exact bytes where they differ."""
    line = {"path": printable(path)}
    if line["path"] != str(path):
        line["path_base64"] = exact_name(path)
    return line


def prepare(item, size, min_side, max_pixels, max_bytes):
    """(line, pixels) for one (path, problem); pixels is None for a file that cannot be read."""
    path, problem = item
    line = describe(path)
    try:
        if problem:
            raise problem
        return line, pixels(path, size, min_side, max_pixels, max_bytes)
    except (BadImage, OSError) as error:
        return {**line, "error": str(error)}, None


def predict_chunk(model, info, chunk, args, min_side, keras_model, first):
    """Print one line per (path, problem), the first being input number `first`; return how many failed."""
    # Pillow and TensorFlow decode outside the GIL.
    with ThreadPoolExecutor(DECODERS) as pool:
        prepared = list(pool.map(partial(prepare, size=info["image_size"], min_side=min_side,
                                         max_pixels=args.max_pixels, max_bytes=args.max_bytes), chunk))
    lines = [line for line, _ in prepared]
    images = [image for _, image in prepared if image is not None]
    readable = [(path, line) for (path, _), (line, image) in zip(chunk, prepared) if image is not None]
    if images:
        images = np.stack(images)
        rows, scores = classify(model, info, images, args.tta)
        task = task_of(info)
        for (_, line), row, score in zip(readable, rows, scores):
            line.update(**task.line(row, info, args.top_k), **verdict(info, score))
            if args.reject_unknown and line["unknown"]:
                line[task.decision] = None
        if keras_model:
            explain(keras_model, info, images, readable, args, first)
    for line in lines:
        print(json.dumps(line), flush=True)
    return len(lines) - len(readable)


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return value


def main():
    min_side, max_pixels, max_bytes = limits()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="image files, folders or globs")
    parser.add_argument("--model", default=str(MODEL), help=f"the model: {formats.READABLE} (default %(default)s)")
    parser.add_argument("--top-k", type=int, default=0, metavar="K", help="also list the K best classes")
    parser.add_argument("--max-pixels", type=positive, default=max_pixels,
                        help="refuse images with more pixels, before decoding them (default: clean.max_pixels, %(default)s)")
    parser.add_argument("--max-bytes", type=positive, default=max_bytes,
                        help="refuse larger files, reading no further (default: clean.max_bytes, %(default)s)")
    parser.add_argument("--tta", action="store_true", help="average each image with its mirror image")
    parser.add_argument("--reject-unknown", action="store_true",
                        help="label null for a photo the unknown check flags (unknown: true)")
    parser.add_argument("--explain", metavar="DIR", help="write a Grad-CAM figure per image into DIR (Keras model only)")
    args = parser.parse_args()

    if args.explain and Path(args.model).suffix != ".keras":
        raise UserError(f"--explain needs the Keras model (.keras), not {args.model}: Grad-CAM needs its gradients")
    model, info, classifier = load_predictor(args.model)
    keras_model = classifier if args.explain else None
    files = expand(args.paths)
    failed, done = 0, 0
    while chunk := list(itertools.islice(files, CHUNK)):
        failed += predict_chunk(model, info, chunk, args, min_side, keras_model, done)
        done += len(chunk)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    run(main)
