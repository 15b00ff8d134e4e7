"""Stage `label_next`: rank the unlabelled pool (data.unlabelled_dir) for labelling.

Every file of the pool is one row of reports/label_next.csv, in one queue:
  next       to label, best first (classifier/training/queue.py: the model's
             least sure photos, spread over the features)
  unknown    the unknown check flags it as none of the classes: shown apart,
             least like the training photos first
  labelled   already in data/labelled.csv (training uses it after `dvc repro`)
  duplicate  the same picture as a photo of the data set or an earlier photo
             of the pool (pHash within splitting.NEAR_BITS bits): labelling
             it would teach nothing, could leak between splits, and near
             copies would fill a batch
  rejected   clean's checks refuse it (the reason says why)
Each photo is checked as `clean` checks the labelled ones. The model's outputs
for it are kept in data/pool.npz by the photo's digest and the model's: only
new photos, or a new model, cost a forward pass.
"""

import csv
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from classifier import params
from classifier.data import pool, walk
from classifier.data.cleaning import perceptual_hash
from classifier.data.images import DECODERS, BadImage, normalize
from classifier.data.splitting import NEAR_BITS
from classifier.errors import run
from classifier.files import read_json, replaced, write_json
from classifier.paths import (HASHES, LABEL_NEXT, LABEL_NEXT_REPORT, MODEL, POOL_CACHE, UNKNOWN, UNKNOWN_INFO,
                              model_info, printable)

COLUMNS = ["rank", "path", "queue", "suggested", "confidence", "margin", "unknown_score", "reason"]
QUEUES = ("next", "unknown", "labelled", "duplicate", "rejected")
CHUNK = 32  # photos decoded and passed through the model at a time: memory stays bounded


def checked(root, path, problem, limits):
    """(jpeg, digest, pHash), or the BadImage that clean would report."""
    if problem is not None:
        return problem
    try:
        jpeg, digest = normalize(Path(root, path), *limits)
    except BadImage as bad:
        return bad
    return jpeg, digest, perceptual_hash(jpeg)


class Outputs:
    """The model's outputs per photo digest, cached in data/pool.npz for one model."""

    def __init__(self, model_digest):
        self.model, self.rows, self.new = model_digest, {}, 0
        if POOL_CACHE.exists():
            cached = np.load(POOL_CACHE)
            if str(cached["model"]) == model_digest and len(cached["digest"]):
                self.rows = {d: tuple(row) for d, *row in zip(cached["digest"], cached["probabilities"],
                                                               cached["unknown_score"], cached["features"])}
        self.network = None

    def of(self, photos, image_size):
        """(probabilities, unknown score, features) for each (digest, jpeg)."""
        todo = [(digest, jpeg) for digest, jpeg in photos if digest not in self.rows]
        if todo:
            from classifier.data.inputs import decode

            images = np.stack([decode(jpeg, image_size).numpy() for _, jpeg in todo])
            outputs = self.forward()(images)
            for i, (digest, _) in enumerate(todo):
                self.rows[digest] = tuple(np.asarray(outputs[name][i]) for name in
                                          ("probabilities", "unknown_score", "features"))
            self.new += len(todo)
        return [self.rows[digest] for digest, _ in photos]

    def forward(self):
        if self.network is None:
            import keras

            from classifier.model import unknown
            from classifier.model.backbones import load_model

            classifier = load_model(MODEL)
            scored = unknown.with_score(classifier, load_model(UNKNOWN))
            self.network = keras.Model(classifier.inputs, {**scored.output,
                                                           "features": unknown.features_of(classifier)}).predict_on_batch
        return self.network

    def save(self, digests):
        """Keep the rows of the photos in the pool now (a removed photo's go), atomically:
        a run killed meanwhile leaves the last whole cache."""
        kept = [d for d in dict.fromkeys(digests) if d in self.rows]
        arrays = {"model": self.model, "digest": np.array(kept, dtype=str)}
        if kept:
            columns = list(zip(*(self.rows[d] for d in kept)))
            arrays.update(probabilities=np.stack(columns[0]), features=np.stack(columns[2]),
                          unknown_score=np.array(columns[1], dtype="float32").reshape(-1))
        with replaced(POOL_CACHE, ".npz") as part:
            np.savez(part, **arrays)


def model_digest():
    digest = hashlib.sha256()
    for path in (MODEL, model_info(MODEL), UNKNOWN, UNKNOWN_INFO):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def nearest(hashes, phash):
    """(path, bits) of the photo in `hashes` (paths, uint64 pHashes) nearest to `phash` in pHash bits."""
    bits = np.bitwise_count(hashes[1] ^ np.uint64(int(phash, 16)))
    best = int(np.argmin(bits)) if len(bits) else None
    return (None, 64) if best is None else (hashes[0][best], int(bits[best]))


def scan(p, files, labelled):
    """Rows for the photos that need no model (labelled, duplicate, rejected),
    and (path, digest, jpeg) batches of the others, CHUNK at a time."""
    table = pd.read_csv(HASHES, dtype=str)
    clean = (table.path.to_numpy(), np.array([int(h, 16) for h in table.phash], dtype=np.uint64))
    # The pool's photos so far, in file order: of two copies in the pool the first waits, the other is a duplicate.
    pool_names, pool_hashes, kept = np.empty(len(files), dtype=object), np.zeros(len(files), dtype=np.uint64), 0
    limits = (p.clean.min_side, p.clean.max_pixels, p.clean.max_bytes)
    rows, root = [], p.data.unlabelled_dir
    with ThreadPoolExecutor(DECODERS) as threads:
        for start in tqdm(range(0, len(files), CHUNK), desc="label_next: pool", unit="chunk"):
            chunk = files[start:start + CHUNK]
            waiting = []
            for (path, _), result in zip(chunk, threads.map(lambda f: checked(root, *f, limits), chunk)):
                name = printable(path)
                if isinstance(result, BadImage):
                    print(f"label_next: {name}: {result.reason} ({result.detail})")
                    rows.append({"path": name, "queue": "rejected", "reason": f"{result.reason}: {result.detail}"})
                    continue
                if name in labelled:
                    rows.append({"path": name, "queue": "labelled", "suggested": labelled[name],
                                 "reason": f"labelled {labelled[name] or 'none of the classes'} in data/labelled.csv"})
                else:
                    twin, bits = nearest(clean, result[2])
                    if bits > NEAR_BITS:
                        twin, bits = nearest((pool_names[:kept], pool_hashes[:kept]), result[2])
                        twin = f"pool photo {twin}"
                    if bits <= NEAR_BITS:
                        rows.append({"path": name, "queue": "duplicate",
                                     "reason": f"the same picture as {twin} ({bits} of 64 pHash bits differ)"})
                        continue
                    waiting.append((name, result[1], result[0]))
                pool_names[kept], pool_hashes[kept] = name, int(result[2], 16)
                kept += 1
            yield rows, waiting
            rows = []


def queued(photos, outputs, info, labelled_features):
    """Rows of the photos the model saw: flagged ones in `unknown`, the others ranked in `next`."""
    from classifier.model.heads import probabilities
    from classifier.report import calibration
    from classifier.training import queue

    if not photos:
        return []
    scores = calibration.scaled(probabilities(np.stack([o[0] for o in outputs])), info["temperature"])
    unknown = np.array([float(o[1]) for o in outputs])
    features = np.stack([o[2] for o in outputs])
    classes, threshold = info["classes"], read_json(UNKNOWN_INFO)["threshold"]
    flagged = unknown > threshold
    rows = []
    order = np.flatnonzero(~flagged)
    order = order[queue.ranked(scores[order], features[order], labelled_features)]
    diverse = queue.ROUNDS * queue.BATCH
    for rank, i in enumerate(order, start=1):
        top, second = np.argsort(scores[i])[::-1][:2]
        why = f"unsure: {classes[top]} {scores[i, top]:.0%} or {classes[second]} {scores[i, second]:.0%}"
        rows.append(row(photos[i], "next", rank, classes[top], scores[i], unknown[i],
                        why + (", unlike the photos above it" if rank <= diverse else "")))
    for rank, i in enumerate(np.argsort(-unknown[flagged], kind="stable"), start=1):
        i = np.flatnonzero(flagged)[i]
        top = int(np.argmax(scores[i]))
        rows.append(row(photos[i], "unknown", rank, classes[top], scores[i], unknown[i],
                        f"none of the classes? score {unknown[i]:.3f} > threshold {threshold:.3f}"))
    return rows


def row(path, name, rank, suggested, scores, unknown_score, reason):
    top = np.sort(scores)
    return {"rank": rank, "path": path, "queue": name, "suggested": suggested, "confidence": round(float(top[-1]), 4),
            "margin": round(float(top[-1] - top[-2]), 4), "unknown_score": round(float(unknown_score), 6),
            "reason": reason}


def write(rows):
    """The queue, atomically: the app never reads half of one."""
    rows = sorted(rows, key=lambda r: (QUEUES.index(r["queue"]), r.get("rank", 0), r["path"]))
    with replaced(LABEL_NEXT) as part, open(part, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    counts = {name: sum(r["queue"] == name for r in rows) for name in QUEUES}
    return {"pool": len(rows), **counts}


def bank():
    """The training photos' features that the unknown check keeps: what counts as labelled."""
    from classifier.model import unknown  # noqa: F401 (registers the check's layer)
    from classifier.model.backbones import load_model

    return load_model(UNKNOWN).get_layer("unknown_score").get_weights()[0]


def main():
    p = params.load()
    start = time.perf_counter()
    root = p.data.unlabelled_dir
    if root is None:
        write_json(LABEL_NEXT_REPORT, write([]))
        Outputs("").save([])  # a declared output, empty: there is no pool
        return
    files, labelled = walk.relative(root), pool.read_labelled(root)
    info, outputs = read_json(model_info(MODEL)), Outputs(model_digest())
    rows, photos, seen, digests = [], [], [], []
    for done, waiting in scan(p, files, labelled):
        rows += done
        photos += [name for name, _, _ in waiting]
        digests += [digest for _, digest, _ in waiting]
        seen += outputs.of([(digest, jpeg) for _, digest, jpeg in waiting], info["image_size"])
    rows += queued(photos, seen, info, bank() if photos else [])
    outputs.save(digests)
    report = write(rows)
    write_json(LABEL_NEXT_REPORT, report)
    print(f"label_next: {report['pool']} pool photo(s): {report['next']} to label, {report['unknown']} unlike every "
          f"class, {report['labelled']} labelled, {report['duplicate']} duplicate(s), {report['rejected']} rejected; "
          f"{outputs.new} through the model ({time.perf_counter() - start:.1f} s); see {LABEL_NEXT}")


if __name__ == "__main__":
    run(main)
