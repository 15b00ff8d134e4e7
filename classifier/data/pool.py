"""The unlabelled pool (data.unlabelled_dir) and the labels a person gives its photos.

data/labelled.csv (path,label,digest) holds them: a pool photo's path relative
to data.unlabelled_dir (as `printable` writes it: a name that is not UTF-8 has
%XX for its odd bytes, and `located` finds the file again), the class it was
given, or nothing for "none of the classes", and the SHA-256 of the photo's
bytes then (the app's Label view writes it, classifier/cli/app.py; a file
without the digest column, or a line with none, is read as before). A photo
replaced at its path since is not that label's any more: it waits in the queue
again, and a new line for it supersedes the old. `download` copies each labelled photo to
data/raw/<label>/labelled/<path> (inside train/ where the photos come split),
so that clean, split and the group split take it as any photo of its class;
the user's files stay where they are. A photo marked none of the classes is not
trained on, unless the data set has a class named `unknown` (NONE_CLASS): the
user asks for a class of outside photos by making its folder. `label_next`
queues the others.
"""

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import pandas as pd

from classifier.errors import UserError
from classifier.paths import LABELLED, printable

FOLDER = "labelled"  # data/raw/<label>/labelled/: where download puts labelled pool photos
NONE = ""  # the label of a photo marked "none of the classes"
NONE_CLASS = "unknown"  # the class such photos go to, where the data set has one


def read_labelled(root, classes=None, several=False):
    """{path: label} from data/labelled.csv, every row checked: a bad one stops with
    one line naming it; with `classes`, a label that is none of them too (`several`:
    each label is a label set, space-separated, as the labels CSV holds it). Without a
    pool (root None) the file must be empty. A photo gone from the pool keeps its
    line (copy_labelled skips it, and says so); one replaced since it was labelled
    is left out (it waits in the queue again)."""
    try:
        table = pd.read_csv(LABELLED, dtype=str, keep_default_na=False)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return {}
    if list(table.columns) not in (["path", "label"], ["path", "label", "digest"]):
        raise UserError(f"{LABELLED}: the columns must be path,label,digest, not {','.join(table.columns)}")
    digests = table.get("digest", pd.Series("", index=table.index))
    if len(table) and root is None:
        raise UserError(f"{LABELLED} lists {len(table)} photo(s) but data.unlabelled_dir is null: "
                        "set it to the folder they are in")
    labels, versions, files = {}, {}, {}
    for number, (path, label, version) in enumerate(zip(table.path, table.label, digests), start=2):
        where = f"{LABELLED}, line {number}"
        if not path:
            raise UserError(f"{where}: needs a path (an empty label means none of the classes)")
        names = label.split() if several else [label]
        if any(name.startswith(".") or "/" in name or "\\" in name for name in names):
            raise UserError(f"{where}: {label!r} cannot be a class name (a folder name, not hidden)")
        file = located(root, path)
        if not inside_pool(root, file) or (Path(root, file).exists() and not is_pool_photo(root, file)):
            raise UserError(f"{where}: {path} is not a file in data.unlabelled_dir ({root}): "
                            "fix the path or remove the line")
        unknown = [name for name in names if name not in [*classes, NONE]] if classes is not None else []
        if unknown:
            kind, kinds = ("label", "labels") if several else ("class", "classes")
            raise UserError(f"{where}: '{unknown[0]}' is not a {kind} of the data set ({kinds}: {', '.join(classes)}): "
                            "correct the label, or remove the line")
        same_photo = not (version and versions.get(path)) or version == versions[path]
        if labels.get(path, label) != label and same_photo:
            raise UserError(f"{where}: {path} is labelled both {labels[path]} and {label}: keep one line")
        labels[path], versions[path], files[path] = label, version, file
    stale = sorted(path for path in labels if replaced_since(root, files[path], versions[path]))
    if stale:
        print(f"{LABELLED}: {len(stale)} photo(s) replaced in data.unlabelled_dir since they were labelled, "
              f"e.g. {stale[0]}: not trained on; they wait in the queue again")
    return {path: label for path, label in labels.items() if path not in stale}


def located(root, name):
    """The pool file (relative path) that `name`, a path as `printable` writes it, stands
    for: itself, or where the name was changed, the file it was changed from."""
    if "%" not in name or Path(root, name).exists():
        return name
    for top, _, files in os.walk(root):
        for file in files:
            path = Path(top, file).relative_to(root)
            if printable(path) == name:
                return str(path)
    return name


def digest(root, path):
    """SHA-256 of a pool photo's bytes; read once per version of the file (its size and
    modification time, as `scan` judges change), since the app asks on every click."""
    stat = Path(root, path).stat()
    return file_digest(str(Path(root, path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=65536)
def file_digest(path, size, mtime_ns):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def replaced_since(root, path, version):
    """Whether the photo at `path` is no longer the one labelled (`version`: its digest then, or "")."""
    return bool(version) and is_pool_photo(root, path) and digest(root, path) != version


def inside_pool(root, path):
    """Whether `path` (relative) lies inside the pool, not reached by '..' or a link out of it."""
    if root is None or not path or Path(path).is_absolute():
        return False
    folder = Path(root).resolve()
    return (folder / path).resolve().is_relative_to(folder)


def is_pool_photo(root, path):
    """Whether `path` (relative) names a file inside the pool."""
    return inside_pool(root, path) and Path(root, path).is_file()


def copy_labelled(root, destination, splits):
    """Copy each labelled pool photo into destination/<label>/[train/]labelled/<path>;
    return (original, written or None, note) for each not copied as named."""
    classes = sorted(folder.name for folder in Path(destination).iterdir() if folder.is_dir())
    labels = read_labelled(root, classes)
    kept, changed = present(root, labels)
    outside = [] if NONE_CLASS in classes else [path for path in kept if labels[path] == NONE]
    if outside:
        print(f"download: {len(outside)} pool photo(s) marked none of the classes in {LABELLED}: not trained on "
              f"(a class folder named {NONE_CLASS}/ in the data set would take them)")
    changed += [(Path(root, located(root, path)), None, "not copied: none of the classes") for path in outside]
    for path in kept:
        if path not in outside:
            copied(root, path, destination / printable(Path(labels[path] or NONE_CLASS, "train" if splits else "",
                                                            FOLDER, path)), changed)
    return changed


def copy_label_sets(root, destination, known):
    """With several labels per photo: copy each labelled pool photo (its label set
    space-separated; none: none of the labels, trained on as such, as in the labels CSV)
    to destination/labelled/<path>; return ({written path: labels}, [(original,
    written or None, note) for each not copied as named])."""
    labels = read_labelled(root, known, several=True)
    kept, changed = present(root, labels)
    sets = {}
    for path in kept:
        target = copied(root, path, destination / printable(Path(FOLDER, path)), changed)
        if target is not None:
            sets[str(target)] = tuple(sorted(labels[path].split()))
    return sets, changed


def present(root, labels):
    """(the labelled paths whose photo is in the pool, sorted; a note for each gone)."""
    if labels:
        print(f"download: {len(labels)} labelled pool photo(s) from {LABELLED}")
    gone = sorted(path for path in labels if not is_pool_photo(root, located(root, path)))
    if gone:
        print(f"download: {len(gone)} labelled photo(s) are gone from data.unlabelled_dir, e.g. {gone[0]}: "
              f"skipped (their lines stay in {LABELLED})")
    return ([path for path in sorted(labels) if path not in gone],
            [(Path(root, located(root, path)), None, "not copied: gone from data.unlabelled_dir") for path in gone])


def copied(root, path, target, changed):
    """Copy the pool photo `path` to `target`, or where that is taken, add a note to `changed`."""
    import shutil

    if target.exists():
        changed.append((Path(root, located(root, path)), None, f"not copied: {target} is taken by another file"))
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(root, located(root, path)), target)
    return target
