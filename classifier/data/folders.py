"""The input contract of a folder of photos for training: one sub-folder per
class, the photos anywhere below it. `download` copies such a folder
(`collect`), `scan` sums it up. Linked folders are not entered; a folder that
cannot be read stops the stage (predict's walk, data/walk.py, makes it an
error line instead)."""

import hashlib
import os
import shutil
from pathlib import Path

from tqdm import tqdm

from classifier.errors import UserError
from classifier.paths import printable


def class_folders(root):
    """Sub-folders of root, one per class; hidden folders are not classes."""
    folders = sorted(d for d in Path(root).iterdir() if d.is_dir() and not d.name.startswith("."))
    if not folders:
        raise UserError(f"{root} has no class sub-folders (expected e.g. {root}/cat/, {root}/dog/)")
    return folders


def files(folder):
    """Every file below `folder`, sorted. Linked sub-folders are not entered (a
    link to a parent would repeat the photos forever) and are said; a folder
    that cannot be read stops with one line, so no photo is left out silently."""

    def unreadable(error):
        raise UserError(f"cannot read the folder {printable(error.filename)} ({error.strerror}): "
                        "fix its permissions, or move it out of data.local_dir")

    found = []
    for top, dirs, names in os.walk(folder, onerror=unreadable):
        for name in dirs:
            if os.path.islink(os.path.join(top, name)):
                print(f"not following the linked folder {printable(os.path.join(top, name))}")
        found += [Path(top) / name for name in names]
    return sorted(found)


def collect(root, destination, max_per_class, move=False):
    """Copy (or move) every file of each class folder, the first max_per_class by
    name; return (original, written or None, note) for each file not copied as named."""
    root = Path(root)
    loose = [f.name for f in root.iterdir() if f.is_file()]
    if loose:
        print(f"download: ignoring {len(loose)} file(s) directly in {root} (not in a class folder)")
    place = shutil.move if move else shutil.copyfile
    changed = []
    for folder in class_folders(root):
        chosen = files(folder)[:max_per_class]
        for source in tqdm(chosen, desc=printable(folder.name), unit="file"):
            relative = Path(folder.name) / source.relative_to(folder)
            target = destination / printable(relative)
            if target.exists():  # "caf%E9.jpg" beside a "caf\xe9.jpg"
                changed.append((source, None, f"not copied: {target} is taken by another file"))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                place(source, target)
            except OSError as error:  # a broken link, a file we may not read: said, not lost silently
                changed.append((source, None, f"not copied: {error.strerror or error}"))
                continue
            if printable(relative) != str(relative):
                changed.append((source, target, "renamed: the name is not UTF-8"))
    return changed


def summary(root):
    digest, count, size = hashlib.sha256(), 0, 0
    for folder in class_folders(root):
        for path in files(folder):
            try:
                stat = path.stat()
                seen = f"{stat.st_size} {stat.st_mtime_ns}"
                size += stat.st_size
            except OSError as error:  # a broken link: download will say so
                seen = str(error.strerror)
            digest.update(os.fsencode(path.relative_to(root)) + b"\0" + seen.encode() + b"\n")
            count += 1
    return {"folder": printable(root), "files": count, "bytes": size, "digest": digest.hexdigest()}
