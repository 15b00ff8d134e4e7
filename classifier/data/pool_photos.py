"""The unlabelled pool's photos as `label_next` reads them (stages/label_next.py):
each checked as `clean` checks the labelled ones; those that need no model set
apart (labelled, duplicate, rejected); the model's outputs for the others kept
in data/pool.npz by the photo's digest and the model's, so that only new photos,
or a new model, cost a forward pass."""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from classifier.data.cleaning import perceptual_hash
from classifier.data.images import DECODERS, BadImage, normalize
from classifier.data.splitting import NEAR_BITS
from classifier.files import replaced
from classifier.paths import HASHES, MODEL, POOL_CACHE, UNKNOWN, UNKNOWN_INFO, model_info, printable

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


def scan(root, files, labelled, limits, stage="label_next"):
    """Rows for the photos that need no model (labelled, duplicate, rejected),
    and (path, digest, jpeg) batches of the others, CHUNK at a time. `files`:
    walk.relative(root); `labelled`: pool.read_labelled(root); `limits`: clean's;
    `stage`: the name its lines begin with."""
    table = pd.read_csv(HASHES, dtype=str)
    clean = (table.path.to_numpy(), np.array([int(h, 16) for h in table.phash], dtype=np.uint64))
    # The pool's photos so far, in file order: of two copies in the pool the first waits, the other is a duplicate.
    pool_names, pool_hashes, kept = np.empty(len(files), dtype=object), np.zeros(len(files), dtype=np.uint64), 0
    rows = []
    with ThreadPoolExecutor(DECODERS) as threads:
        for start in tqdm(range(0, len(files), CHUNK), desc=f"{stage}: pool", unit="chunk"):
            chunk = files[start:start + CHUNK]
            waiting = []
            for (path, _), result in zip(chunk, threads.map(lambda f: checked(root, *f, limits), chunk)):
                name = printable(path)
                if isinstance(result, BadImage):
                    print(f"{stage}: {name}: {result.reason} ({result.detail})")
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
