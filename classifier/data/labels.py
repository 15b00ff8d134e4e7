"""Several labels per photo: the labels CSV (data.labels) that gives them.

Its first line is `path,labels`; each other line a photo's path relative to
data.local_dir (a flat folder is fine) and its labels, space-separated. Empty
labels mean "none of these": the photo is kept, with an all-zero target. Every
line is checked before any photo is copied; a bad one stops `download` with one
line naming it and what to do.
"""

import csv
import hashlib
import shutil
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from classifier.data.folders import fingerprint
from classifier.errors import UserError

HEADER = ["path", "labels"]


def check_name(label, where):
    """A label becomes a folder and file name in reports and exports: no `/`, no leading `.`."""
    if "/" in label or "\\" in label or label.startswith("."):
        raise UserError(f"{where}: the label {label!r} cannot be a name (no '/' or '\\', no leading '.'): rename it")


def read(csv_path, root):
    """{path relative to `root` (POSIX): sorted tuple of labels}, in the file's order."""
    csv_path, root = Path(csv_path), Path(root)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"data.labels: cannot read {csv_path} ({error}): give a UTF-8 CSV file") from None
    if not rows or [cell.strip() for cell in rows[0]] != HEADER:
        found = ",".join(rows[0]) if rows else "an empty file"
        raise UserError(f"{csv_path}: the first line must be `path,labels` (found: {found})")
    labels = {}
    for number, row in enumerate(rows[1:], start=2):
        where = f"{csv_path}, line {number}"
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) != 2:
            raise UserError(f"{where}: {len(row)} columns, expected 2 (path,labels; quote a path holding a comma)")
        path, given = row[0].strip(), tuple(sorted(set(row[1].split())))
        if not path:
            raise UserError(f"{where}: the path is empty: give the photo's path relative to {root}")
        relative = PurePosixPath(path.replace("\\", "/"))
        if relative.is_absolute() or ".." in relative.parts or not (root / relative).resolve().is_relative_to(root.resolve()):
            raise UserError(f"{where}: {path} lies outside data.local_dir ({root}): give a path inside it, relative to it")
        if not (root / relative).is_file():
            raise UserError(f"{where}: {path} is not a file in {root}: correct the path, or delete the line")
        for label in given:
            check_name(label, where)
        key = relative.as_posix()
        if key in labels and labels[key] != given:
            raise UserError(f"{where}: {key} is listed again with other labels "
                            f"({' '.join(labels[key]) or 'none'}, then {' '.join(given) or 'none'}): keep one line")
        labels[key] = given
    return labels


def names(labels):
    """Every label that {path: labels} gives, sorted."""
    return sorted({label for given in labels.values() for label in given})


def chosen(labels, max_per_class):
    """The photos to copy: all, or in the file's order each photo that some label of it
    (or "none", for no label) still needs to reach max_per_class photos."""
    if max_per_class is None:
        return list(labels)
    counts, kept = {}, []
    for path, given in labels.items():
        if any(counts.get(label, 0) < max_per_class for label in given or ("",)):
            kept.append(path)
            for label in given or ("",):
                counts[label] = counts.get(label, 0) + 1
    return kept


def collect(csv_path, root, destination, max_per_class):
    """Copy each photo the labels CSV lists to destination/<its path>; returns
    {destination path: labels} in the file's order."""
    labels = read(csv_path, root)
    copied = {}
    for path in tqdm(chosen(labels, max_per_class), desc="labelled photos", unit="file"):
        target = Path(destination) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(root) / path, target)
        copied[str(target)] = labels[path]
    return copied


def write(table, path):
    """{photo path: labels} as a CSV of path,labels."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows((photo, " ".join(given)) for photo, given in table.items())


def summary(csv_path, root):
    """What `scan` writes for a labels CSV: the listed photos' fingerprint and the
    CSV's own digest (a changed label reruns `download`)."""
    listed = [Path(root) / path for path in read(csv_path, root)]
    return {**fingerprint(root, listed), "labels_sha256": hashlib.sha256(Path(csv_path).read_bytes()).hexdigest()}
