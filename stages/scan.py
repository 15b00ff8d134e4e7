"""Stage `scan`: sum up what `download` would read, into data/scan.json.

DVC cannot watch data.local_dir itself (it is outside the project, and DVC
cannot hash a file name that is not UTF-8), so this stage runs on every
`dvc repro` (always_changed) and writes the folder's file count, bytes and a
digest of every file's name, size and modification time, as make and rsync
judge change. `download` depends on that file: add, remove or edit a photo
and it reruns with everything after it; change nothing and DVC skips it.
The photos of data.unlabelled_dir listed in data/labelled.csv count there too
(download copies them); the whole pool goes to data/unlabelled.json, which only
`label_next` reads: a new unlabelled photo reruns the queue, not the training.
"""

from pathlib import Path

from classifier import params
from classifier.data import labels, pool, walk
from classifier.data.folders import fingerprint, summary
from classifier.errors import run
from classifier.files import write_json
from classifier.paths import SCAN, UNLABELLED_SCAN


def main():
    p = params.load()
    found = {"source": p.data.source}
    if p.data.labels:
        found.update(labels.summary(p.data.labels, p.data.local_dir))
    elif p.data.source == "local":
        found.update(summary(p.data.local_dir))
    root = p.data.unlabelled_dir
    unlabelled = {"folder": None, "files": 0}
    if root is not None:
        found["labelled"] = fingerprint(root, [Path(root, pool.located(root, path))
                                                  for path in sorted(pool.read_labelled(root))])
        unlabelled = fingerprint(root, [Path(root, path) for path, _ in walk.relative(root)])
    write_json(SCAN, found)
    write_json(UNLABELLED_SCAN, unlabelled)


if __name__ == "__main__":
    run(main)
