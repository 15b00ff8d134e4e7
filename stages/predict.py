"""Label new images: `python -m stages.predict PATH [PATH ...]` (files, folders, globs).

Reads any format that `export` writes (--model models/export/model.tflite, ...).
Prints one JSON line per image, in input order: {"path", "label", "confidence"}
(and "top_k" with --top-k K), or {"path", "error"} for a file that cannot be
read; exits 1 if any failed.
"""

import argparse
import glob
import itertools
import json
import sys
from pathlib import Path

from stages import formats
from stages.errors import UserError, run
from stages.images import BadImage, normalize
from stages.paths import MODEL, model_info, read_json

CHUNK = 32


def expand(paths):
    """Files as given; folders walked recursively (hidden files skipped); globs expanded."""
    for given in paths:
        path = Path(given)
        if not path.exists() and glob.has_magic(given):
            yield from expand(sorted(glob.glob(given, recursive=True)))
        elif path.is_dir():
            yield from (
                f for f in sorted(path.rglob("*")) if f.is_file() and not f.name.startswith(".")
            )
        else:
            yield path


def load_model(path):
    """A function (uint8 pixels -> outputs) for any exported format, and model.json."""
    info_path = model_info(path)
    if not Path(path).exists() or not info_path.exists():
        raise UserError(f"no trained model at {path}: run `dvc repro` first")
    return formats.load(path), read_json(info_path)


def probabilities(model, info, jpeg_bytes):
    """The same decoding and resizing as the training pipeline; the model does the rest."""
    import tensorflow as tf

    from stages.heads import probabilities
    from stages.inputs import decode

    images = tf.stack([decode(data, info["image_size"]) for data in jpeg_bytes])
    return probabilities(model(images.numpy()))


def predict_chunk(model, info, paths, top_k):
    """Print one line per path; return how many could not be read."""
    lines, readable = {}, []
    for path in paths:
        try:
            readable.append((path, normalize(path)[0]))
        except (BadImage, OSError) as error:
            lines[path] = {"path": str(path), "error": str(error)}
    if readable:
        rows = probabilities(model, info, [data for _, data in readable])
        for (path, _), row in zip(readable, rows):
            ranked = row.argsort()[::-1]
            best = int(ranked[0])
            lines[path] = {"path": str(path), "label": info["classes"][best], "confidence": float(row[best])}
            if top_k:
                lines[path]["top_k"] = [
                    {"label": info["classes"][i], "confidence": float(row[i])} for i in ranked[:top_k]
                ]
    for path in paths:
        print(json.dumps(lines[path]), flush=True)
    return len(paths) - len(readable)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="image files, folders or globs")
    parser.add_argument("--model", default=str(MODEL), help=f"the model: {formats.READABLE} (default %(default)s)")
    parser.add_argument("--top-k", type=int, default=0, metavar="K", help="also list the K best classes")
    args = parser.parse_args()

    model, info = load_model(args.model)
    files = expand(args.paths)
    failed = 0
    while chunk := list(itertools.islice(files, CHUNK)):
        failed += predict_chunk(model, info, chunk, args.top_k)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    run(main)
