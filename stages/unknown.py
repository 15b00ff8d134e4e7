"""Stage `unknown`: the check that flags photos of none of the classes.

Runs the fine-tuned model's feature extractor over the training photos (at
most classifier.model.unknown.BANK of them) and the val photos, keeps the
training features in the check (classifier/model/unknown.py) and sets its
threshold so that unknown.pass_share of the val photos and of the training
photos, each scored against the other folds' (cross-fitted), pass. Writes
models/unknown.keras (features -> score) and models/unknown.json (method, k,
threshold, the photos it rests on), which predict, evaluate and export read
beside models/model.keras.
"""

import time

import numpy as np

from classifier.data import manifest
from classifier.data.inputs import batches
from classifier.errors import run
from classifier.files import write_json
from classifier.model import backbones, registry, unknown
from classifier.paths import MODEL, UNKNOWN, UNKNOWN_INFO
from classifier.runtime import engines
from classifier.runtime.passes import passes


def features(p, forward, paths, split):
    data = batches(paths, np.zeros(len(paths), "int64"), p.model.image_size, p.runtime.batch_size)
    return passes(forward, data, len(paths), f"unknown: {split} features")


def main():
    p, _ = registry.load()
    start = time.perf_counter()
    images = manifest.read()
    train, val = manifest.rows(images, "train")[0], manifest.rows(images, "val")[0]
    train = [train[i] for i in unknown.drawn(len(train), p.train.seed)]
    network = unknown.embedder(backbones.load_model(MODEL))
    first = next(iter(batches(train[:2], np.zeros(2, "int64"), p.model.image_size, 2)))[0].numpy()
    forward = engines.forward(network, p.runtime.engine, first)
    bank = features(p, forward, train, "train")
    check = unknown.check(bank, p.unknown.k)
    scores = check.predict(features(p, forward, val, "val"), verbose=0, batch_size=p.runtime.batch_size)
    k = check.get_layer("unknown_score").k
    threshold = unknown.threshold(np.concatenate([scores, unknown.cross_fitted(bank, k, p.train.seed)]),
                                  p.unknown.pass_share)
    check.save(UNKNOWN)
    write_json(UNKNOWN_INFO, {"method": "knn", "k": k, "threshold": threshold, "pass_share": p.unknown.pass_share,
                              "training_photos": len(train), "val_photos": len(val),
                              "val_passed": round(float((scores <= threshold).mean()), 4),
                              "seconds": round(time.perf_counter() - start, 1)})
    print(f"unknown: {len(train)} training photos kept; threshold {threshold:.4f} (the score at or below which "
          f"{p.unknown.pass_share:.0%} of the {len(val)} val photos and the {len(train)} training photos, "
          f"cross-fitted, lie; {(scores <= threshold).mean():.1%} of the val photos)")


if __name__ == "__main__":
    run(main)
