"""Stage `download`: bring the images into data/raw/<class>/, one folder per class.

Sources (data.source): petimages, kaggle and cifar10 from the network (see
classifier/data/sources.py), or local, a folder of class sub-folders or of
split folders (train/, val/, test/) holding class folders
(classifier/data/folders.py). A given split is kept: the images go to
data/raw/<class>/<split>/ and data/given_splits.json lists the splits. Every file is
passed on, bad ones too: `clean` decides, and reports what it drops. A name
that is not UTF-8 (DVC, CSV and TensorFlow cannot take it) is written with
each such byte as %XX; data/renamed.csv lists every file whose name changed or
that could not be copied, with the original name. Photos of the unlabelled
pool that a person labelled (data/labelled.csv) are copied in as photos of
their class (classifier/data/pool.py).

With data.labels (several labels per photo, classifier/data/labels.py) the
photos the CSV lists are copied to data/raw/<their path>, labelled pool photos
to data/raw/labelled/<path>, and data/label_sets.csv gives each one's labels
(otherwise it holds its header only: the folders are the classes).
"""

import csv
import shutil
import tempfile

from classifier import params
from classifier.data import labels, pool, sources
from classifier.data.folders import collect
from classifier.errors import run
from classifier.files import write_json
from classifier.paths import GIVEN_SPLITS, LABEL_SETS, RAW, RENAMED, exact_name, printable


def write_outputs(splits, changed):
    write_json(GIVEN_SPLITS, {"splits": splits})
    if splits:
        print(f"download: the photos come split ({', '.join(splits)}); split keeps that")
    write_renamed(changed)


def write_renamed(changed):
    with open(RENAMED, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["original", "original_base64", "path", "note"])
        for source, target, note in changed:
            writer.writerow([printable(source), exact_name(source), target or "", note])
    if changed:
        print(f"download: {len(changed)} file(s) renamed or not copied: see {RENAMED}")


def main():
    p = params.load()
    if RAW.exists():
        shutil.rmtree(RAW)
    RAW.mkdir(parents=True)
    labels.write({}, LABEL_SETS)  # its header only: without data.labels the folders are the classes
    if p.data.labels:
        sets = labels.collect(p.data.labels, p.data.local_dir, RAW, p.data.max_per_class)
        known = labels.names(labels.read(p.data.labels, p.data.local_dir))
        labelled, changed = pool.copy_label_sets(p.data.unlabelled_dir, RAW, known)
        labels.write({**sets, **labelled}, LABEL_SETS)
        write_outputs([], changed)
        return
    if p.data.source == "local":
        splits, changed = collect(p.data.local_dir, RAW, p.data.max_per_class)
    else:
        # Unpack beside data/raw (same disk), so that moving the files is instant.
        with tempfile.TemporaryDirectory(dir=RAW.parent, prefix="unpack-") as work:
            splits, changed = collect(sources.prepare(p.data, work), RAW, p.data.max_per_class, move=True)
    write_outputs(splits, changed + pool.copy_labelled(p.data.unlabelled_dir, RAW, splits))


if __name__ == "__main__":
    run(main)
