"""Stage `pool_features`: the frozen backbone's features of the unlabelled pool, for
pseudo-labels (train.pseudo_labels: confident; classifier/training/pseudo_labels.py).

Writes data/pool_features/x.npy, one row per photo waiting in data.unlabelled_dir
(neither labelled, nor a copy of a photo of the data set or of the pool, nor a
file `clean` would refuse: classifier/data/pool_photos.py checks them as
label_next does), and paths.csv: their paths, and whether the unknown check
flags each (over the same features, against the training photos': never
pseudo-labelled). With train.pseudo_labels none both are empty, and nothing is
read: a change to the pool or to unknown.* then reruns this stage and nothing after it.
"""

import numpy as np
import pandas as pd

from classifier import params
from classifier.errors import UserError, run
from classifier.model import registry
from classifier.paths import POOL_FEATURES


def waiting_features(p):
    """(paths, backbone features) of the photos waiting in the pool."""
    from classifier.data import pool, pool_photos, walk  # here, not above: without pseudo-labels the stage
    from classifier.data.inputs import decode  # imports neither TensorFlow nor scikit-learn
    from classifier.model import backbones

    root, network = p.data.unlabelled_dir, backbones.extractor(p.model)
    limits = (p.clean.min_side, p.clean.max_pixels, p.clean.max_bytes)
    paths, rows = [], []
    for _, waiting in pool_photos.scan(root, walk.relative(root), pool.read_labelled(root), limits, "pool_features"):
        if waiting:
            images = np.stack([decode(jpeg, p.model.image_size).numpy() for _, _, jpeg in waiting])
            rows.append(np.asarray(network.predict_on_batch(images)))
            paths += [name for name, _, _ in waiting]
    return paths, np.concatenate(rows) if rows else np.zeros((0, 0), "float32")


def main():
    p = params.load()
    paths, x, flags = [], np.zeros((0, 0), "float32"), np.zeros(0, bool)
    if p.train.pseudo_labels == "confident":  # params.check: with a pool
        from classifier.files import read_features
        from classifier.training import pseudo_labels

        p, _ = registry.load()  # resolving `auto` asks TensorFlow for GPUs: only here
        spec = registry.BACKBONES[p.model.backbone]
        if spec.from_scratch:
            raise UserError("train.pseudo_labels: confident needs a pre-trained backbone's features, not the cnn "
                            "baseline's pixels: set it to none")
        paths, x = waiting_features(p)
        x = x.astype(spec.cache_dtype)
        if paths:
            flags = pseudo_labels.flagged(read_features("train")[0], read_features("val")[0], x, p)
        print(f"pool_features: {len(paths)} pool photo(s) waiting to be labelled, {int(flags.sum())} of them "
              "flagged by the unknown check")
    POOL_FEATURES.mkdir(parents=True, exist_ok=True)
    np.save(POOL_FEATURES / "x.npy", x)
    pd.DataFrame({"path": paths, "unknown": flags}).to_csv(POOL_FEATURES / "paths.csv", index=False)


if __name__ == "__main__":
    run(main)
