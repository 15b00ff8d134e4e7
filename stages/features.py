"""Stage `features`: run the frozen backbone once and cache its output.

Writes data/features/<split>_x.npy (one feature vector per image, in manifest
order) and <split>_y.npy (integer labels; with several labels per photo, rows of 0/1). Rows are written to a memory-mapped
.npy batch by batch, so memory does not grow with the number of images.

A killed run resumes where it stopped: the arrays are written in
backup/features/ (classifier/training/backup.py), and after every batch the rows are flushed
to disk and only then counted in <split>.progress.json; when every split is
done they move to data/features/.
"""

import json
from functools import partial

import numpy as np

from classifier.data import manifest
from classifier.data.inputs import batches
from classifier.errors import run
from classifier.files import write_json
from classifier.model import backbones, registry
from classifier.paths import FEATURES, SPLITS
from classifier.runtime import engines
from classifier.training import backup


def rows_done(folder, split):
    """Rows of <split>_x.npy that a killed run already wrote to `folder`."""
    progress = folder / f"{split}.progress.json"
    return json.loads(progress.read_text())["rows"] if progress.exists() else 0


def save_progress(folder, split, rows):
    write_json(folder / f"{split}.progress.json", {"rows": rows})


def main():
    p, _ = registry.load()
    spec = registry.BACKBONES[p.model.backbone]
    network = backbones.extractor(p.model)  # first: a weights problem is said before any work
    images = manifest.read()
    folder = backup.folder("features")
    size, batch_size = p.model.image_size, p.runtime.batch_size
    paths, labels = manifest.rows(images, SPLITS[0], p.model.task)
    first, _ = next(iter(batches(paths[:batch_size], labels[:batch_size], size, batch_size)))
    forward = engines.forward(network, p.runtime.engine, first)
    for split in SPLITS:
        paths, labels = manifest.rows(images, split, p.model.task)
        start = rows_done(folder, split)
        if start:
            print(f"features: {split}: resuming at image {start} of {len(paths)}")
        data = batches(paths[start:], labels[start:], size, batch_size)
        shape = engines.stream_to_npy(forward, data, len(paths), folder / f"{split}_x.npy", spec.cache_dtype,
                        f"features {split}", start=start, record=partial(save_progress, folder, split))
        np.save(folder / f"{split}_y.npy", labels)
        print(f"features: {split} {shape}")
    FEATURES.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        for name in (f"{split}_x.npy", f"{split}_y.npy"):
            (folder / name).replace(FEATURES / name)
    backup.remove("features")


if __name__ == "__main__":
    run(main)
