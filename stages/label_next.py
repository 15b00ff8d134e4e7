"""Stage `label_next`: rank the unlabelled pool (data.unlabelled_dir) for labelling.

Every file of the pool is one row of reports/label_next.csv, in one queue:
  next       to label, best first (classifier/training/queue.py: the model's
             least sure photos, spread over the features; the suggestion a
             class, or with several labels per photo a label set)
  unknown    the unknown check flags it as none of the classes: shown apart,
             least like the training photos first
  labelled   already in data/labelled.csv (training uses it after `dvc repro`)
  duplicate  the same picture as a photo of the data set or an earlier photo
             of the pool (pHash within splitting.NEAR_BITS bits): labelling
             it would teach nothing, could leak between splits, and near
             copies would fill a batch
  rejected   clean's checks refuse it (the reason says why)
Each photo is checked as `clean` checks the labelled ones, and the model's
outputs for it are cached by digest (classifier/data/pool_photos.py): only new
photos, or a new model, cost a forward pass.
"""

import csv
import time

from classifier import params
from classifier.data import pool, pool_photos, walk
from classifier.errors import run
from classifier.files import read_json, replaced, write_json
from classifier.paths import LABEL_NEXT, LABEL_NEXT_REPORT, MODEL, UNKNOWN, UNKNOWN_INFO, model_info
from classifier.training import queue

COLUMNS = ["rank", "path", "queue", "suggested", "confidence", "certainty", "unknown_score", "reason"]
QUEUES = ("next", "unknown", "labelled", "duplicate", "rejected")


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
        pool_photos.Outputs("").save([])  # a declared output, empty: there is no pool
        return
    files, labelled = walk.relative(root), pool.read_labelled(root)
    info, outputs = read_json(model_info(MODEL)), pool_photos.Outputs(pool_photos.model_digest())
    limits = (p.clean.min_side, p.clean.max_pixels, p.clean.max_bytes)
    rows, photos, seen, digests = [], [], [], []
    for done, waiting in pool_photos.scan(root, files, labelled, limits):
        rows += done
        photos += [name for name, _, _ in waiting]
        digests += [digest for _, digest, _ in waiting]
        seen += outputs.of([(digest, jpeg) for _, digest, jpeg in waiting], info["image_size"])
    rows += queue.queued(photos, seen, info, bank() if photos else [], read_json(UNKNOWN_INFO)["threshold"])
    outputs.save(digests)
    report = write(rows)
    write_json(LABEL_NEXT_REPORT, report)
    print(f"label_next: {report['pool']} pool photo(s): {report['next']} to label, {report['unknown']} unlike every "
          f"class, {report['labelled']} labelled, {report['duplicate']} duplicate(s), {report['rejected']} rejected; "
          f"{outputs.new} through the model ({time.perf_counter() - start:.1f} s); see {LABEL_NEXT}")


if __name__ == "__main__":
    run(main)
