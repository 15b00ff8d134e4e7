"""Stage `features`: run the frozen backbone once and cache its output.

Writes data/features/<split>_x.npy (one feature vector per image, in manifest
order) and <split>_y.npy (integer labels). Rows are written to a memory-mapped
.npy batch by batch, so memory does not grow with the number of images.
"""

import shutil

import numpy as np
from numpy.lib.format import open_memmap
from tqdm import tqdm

from stages import backbones, manifest, params
from stages.errors import run
from stages.inputs import batches
from stages.paths import FEATURES, SPLITS


def extract(network, data, count, path, dtype, desc):
    features = None
    row = 0
    with tqdm(total=count, desc=desc, unit="img") as bar:
        for images, _ in data:
            batch = network.predict_on_batch(images)
            if features is None:
                shape = (count, *batch.shape[1:])
                features = open_memmap(path, mode="w+", dtype=dtype, shape=shape)
            features[row : row + len(batch)] = batch
            row += len(batch)
            bar.update(len(batch))
    features.flush()
    return features.shape


def main():
    p = params.load()
    backbones.check(p.model)
    network = backbones.extractor(p.model)
    images = manifest.read()
    if FEATURES.exists():
        shutil.rmtree(FEATURES)
    FEATURES.mkdir(parents=True)
    for split in SPLITS:
        paths, labels = manifest.rows(images, split)
        data = batches(paths, labels, p.model.image_size, p.features.batch_size)
        dtype = backbones.BACKBONES[p.model.backbone].cache_dtype
        path = FEATURES / f"{split}_x.npy"
        shape = extract(network, data, len(paths), path, dtype, f"features {split}")
        np.save(FEATURES / f"{split}_y.npy", labels)
        print(f"features: {split} {shape}")


if __name__ == "__main__":
    run(main)
