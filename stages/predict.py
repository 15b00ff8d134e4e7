"""Label new images: `python -m stages.predict PATH [PATH ...]` (files, folders, globs).

Reads any format that `export` writes (--model models/export/model.tflite, ...).
Prints one JSON line per image, in input order: {"path", "label", "confidence"}
(and "top_k" with --top-k K, "explanation" with --explain DIR), or {"path",
"error"} for a file that cannot be read; exits 1 if any failed. Confidences are
calibrated with the temperature in model.json; --tta averages each image with
its mirror image; --explain writes a Grad-CAM figure per image.

Files are untrusted: each is checked as `clean` checks it (pixel count from
the header before any decoding, then a full decode) and decoded and resized
on its own (one per core at a time), so one hostile file is one error line,
and memory is bounded by one full-size image per core plus a batch of resized
ones.
"""

import argparse
import glob
import itertools
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from PIL import Image, ImageOps

from stages import formats
from stages.errors import UserError, run
from stages.images import PILLOW_MAX_PIXELS, BadImage, normalize
from stages.params import PARAMS_FILE
from stages.paths import MODEL, model_info, read_json

CHUNK = 32


def expand(paths):
    """(path, problem) pairs: files as given, folders walked, globs expanded;
    problem is None or the BadImage to report instead of reading the file."""
    for given in paths:
        path = Path(given)
        if not path.exists() and glob.has_magic(given):
            yield from expand(sorted(glob.glob(given, recursive=True)))
        elif path.is_dir():
            yield from walk(path)
        else:
            yield path, None


def walk(folder):
    """The files under `folder`, sorted, hidden ones left out. A symlink that leads
    outside the folder is not followed: it is an error line."""
    root = folder.resolve()
    found = []
    for top, dirs, files in os.walk(folder):  # does not enter linked folders
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        for name in [*dirs, *files]:
            path = Path(top) / name
            if name.startswith("."):
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                detail = f"leads to {os.readlink(path)}, outside {folder}; not followed"
                found.append((path, BadImage("symlink_outside", detail)))
            elif name in files:
                found.append((path, None))
    return sorted(found, key=lambda pair: pair[0])


def load_model(path):
    """A function (uint8 pixels -> outputs) for any exported format, and model.json."""
    info_path = model_info(path)
    if not Path(path).exists() or not info_path.exists():
        raise UserError(f"no trained model at {path}: run `dvc repro` first")
    return formats.load(path), read_json(info_path)


def limits():
    """clean's min_side and max_pixels from params.yaml, or no size minimum and Pillow's limit."""
    if PARAMS_FILE.exists():
        from stages import params

        clean = params.load().clean
        return clean.min_side, clean.max_pixels
    return 1, PILLOW_MAX_PIXELS


def pixels(path, size, min_side, max_pixels):
    """The image's uint8 pixels as every model takes them, or raise BadImage."""
    import tensorflow as tf

    from stages.inputs import decode

    jpeg = normalize(path, min_side, max_pixels)[0]
    try:
        return decode(jpeg, size).numpy()
    except tf.errors.OpError as error:
        raise BadImage("corrupt", f"TensorFlow's decoder: {error.message}") from None


def classify(model, info, images, flip):
    """Calibrated class probabilities of uint8 images."""
    from stages import calibration, tta
    from stages.heads import probabilities

    predict = lambda batch: probabilities(model(batch))  # noqa: E731
    scores = tta.flip_average(predict, images) if flip else predict(images)
    return calibration.scaled(scores, info["temperature"])


def explain(keras_model, images, lines, folder, first):
    """One Grad-CAM figure per image into `folder`, numbered from `first`; its path goes into the line."""
    from stages import figures, gradcam  # figures first: it selects matplotlib's file-only backend

    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    for number, (line, heatmap) in enumerate(zip(lines, gradcam.heatmaps(keras_model, images)[0]), first):
        figure, (photo, explained) = plt.subplots(1, 2, figsize=(8, 4.3))
        with Image.open(line["path"]) as original:
            original = ImageOps.exif_transpose(original).convert("RGB")
        photo.imshow(original)
        photo.axis("off")
        figures.overlay(explained, original, heatmap, "where the model looked (Grad-CAM)")
        figure.suptitle(f"{Path(line['path']).name}: {line['label']}, {line['confidence']:.1%}")
        line["explanation"] = str(folder / f"{number:05d}-{Path(line['path']).stem}.png")
        figure.savefig(line["explanation"], dpi=100)
        plt.close(figure)


def prepare(item, size, min_side, max_pixels):
    """(line, pixels) for one (path, problem); pixels is None for a file that cannot be read."""
    path, problem = item
    try:
        if problem:
            raise problem
        return {"path": str(path)}, pixels(path, size, min_side, max_pixels)
    except (BadImage, OSError) as error:
        return {"path": str(path), "error": str(error)}, None


def predict_chunk(model, info, chunk, args, min_side, keras_model, first):
    """Print one line per (path, problem), the first being input number `first`; return how many failed."""
    import numpy as np

    # One file per core at a time: Pillow and TensorFlow decode outside the GIL.
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        prepared = list(pool.map(partial(prepare, size=info["image_size"], min_side=min_side,
                                         max_pixels=args.max_pixels), chunk))
    lines = [line for line, _ in prepared]
    images = [image for _, image in prepared if image is not None]
    readable = [line for line in lines if "error" not in line]
    if images:
        images = np.stack(images)
        for line, row in zip(readable, classify(model, info, images, args.tta)):
            ranked = row.argsort()[::-1]
            best = int(ranked[0])
            line.update(label=info["classes"][best], confidence=float(row[best]))
            if args.top_k:
                line["top_k"] = [{"label": info["classes"][i], "confidence": float(row[i])} for i in ranked[:args.top_k]]
        if keras_model:
            explain(keras_model, images, readable, Path(args.explain), first)
    for line in lines:
        print(json.dumps(line), flush=True)
    return len(lines) - len(readable)


def main():
    min_side, max_pixels = limits()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="image files, folders or globs")
    parser.add_argument("--model", default=str(MODEL), help=f"the model: {formats.READABLE} (default %(default)s)")
    parser.add_argument("--top-k", type=int, default=0, metavar="K", help="also list the K best classes")
    parser.add_argument("--max-pixels", type=int, default=max_pixels,
                        help="refuse images with more pixels, before decoding them (default: clean.max_pixels, %(default)s)")
    parser.add_argument("--tta", action="store_true", help="average each image with its mirror image")
    parser.add_argument("--explain", metavar="DIR", help="write a Grad-CAM figure per image into DIR (Keras model only)")
    args = parser.parse_args()

    if args.explain and Path(args.model).suffix != ".keras":
        raise UserError(f"--explain needs the Keras model (.keras), not {args.model}: Grad-CAM needs its gradients")
    model, info = load_model(args.model)
    # For a .keras file `model` is the loaded model's predict_on_batch; Grad-CAM needs the model.
    keras_model = model.__self__ if args.explain else None
    files = expand(args.paths)
    failed, done = 0, 0
    while chunk := list(itertools.islice(files, CHUNK)):
        failed += predict_chunk(model, info, chunk, args, min_side, keras_model, done)
        done += len(chunk)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    run(main)
