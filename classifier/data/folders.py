"""The input contract of a folder of photos for training: one sub-folder per
class, the photos anywhere below it; or split folders (train/, and optionally
val/ and test/: SPLIT_NAMES), each holding such class folders, a split the
user made and that the pipeline keeps. `download` copies such a folder
(`collect`) into data/raw/<class>/ or, split, data/raw/<class>/<split>/, and
`scan` sums it up. Linked folders are not entered; a folder that
cannot be read stops the stage (predict's walk, data/walk.py, makes it an
error line instead)."""

import hashlib
import os
import shutil
from pathlib import Path

from tqdm import tqdm

from classifier.errors import UserError
from classifier.paths import printable

# Sub-folder names (compared ignoring case) that make a folder an already-split one.
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test", "testing": "test"}


def class_folders(root):
    """Sub-folders of root, one per class; hidden folders are not classes."""
    folders = sorted(d for d in Path(root).iterdir() if d.is_dir() and not d.name.startswith("."))
    if not folders:
        raise UserError(f"{root} has no class sub-folders (expected e.g. {root}/cat/, {root}/dog/)")
    return folders


def given_splits(root):
    """{split: folder} where root's sub-folders are split folders, {} where they are
    class folders. A mix of both, two folders for one split, no train/, or a class
    that train/ lacks stops with one line."""
    folders = class_folders(root)
    named = {folder: SPLIT_NAMES.get(folder.name.casefold()) for folder in folders}
    if not any(named.values()):
        return {}
    others = [folder.name for folder, split in named.items() if split is None]
    if others:
        found = ", ".join(f"{folder.name}/" for folder, split in named.items() if split)
        raise UserError(f"{printable(root)} mixes split folders ({found}) with class folders ({printable(others[0])}/): "
                        "put every class folder inside train/ (and val/, test/), or use class folders only")
    splits = {}
    for folder, split in named.items():
        if split in splits:
            raise UserError(f"{printable(root)}: {splits[split].name}/ and {folder.name}/ are both the {split} split; keep one")
        splits[split] = folder
    if "train" not in splits:
        raise UserError(f"{printable(root)} has {', '.join(f.name + '/' for f in splits.values())} but no train/ folder "
                        "to train on: add one, or put the class folders directly in it")
    known = {folder.name for folder in class_folders(splits["train"])}
    for split, folder in splits.items():
        extra = sorted({c.name for c in class_folders(folder)} - known)
        if extra:
            raise UserError(f"class {printable(extra[0])!r} is in {printable(folder)} but not in the train folder: "
                            "a class needs training photos")
    return splits


def layout(root):
    """(class name, split or None, folder) for every class folder under root."""
    splits = given_splits(root)
    if not splits:
        return [(folder.name, None, folder) for folder in class_folders(root)]
    return [(folder.name, split, folder) for split, top in splits.items() for folder in class_folders(top)]


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
    name (per split, in a split folder). Returns the given splits (sorted; none
    for class folders) and (original, written or None, note) for each file not
    copied as named."""
    root = Path(root)
    places = layout(root)
    for top in sorted({root, *(folder.parent for _, _, folder in places)}):
        loose = [f.name for f in top.iterdir() if f.is_file()]
        if loose:
            print(f"download: ignoring {len(loose)} file(s) directly in {printable(top)} (not in a class folder)")
    place = shutil.move if move else shutil.copyfile
    changed = []
    for name, split, folder in places:
        chosen = files(folder)[:max_per_class]
        for source in tqdm(chosen, desc=printable(Path(split or "", name)), unit="file"):
            relative = Path(name, split or "", source.relative_to(folder))
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
    return sorted({split for _, split, _ in places} - {None}), changed


def summary(root):
    """The class folders' files summed up: what `scan` writes for `download`."""
    return fingerprint(root, [path for folder in class_folders(root) for path in files(folder)])


def fingerprint(root, paths):
    """Count, bytes and a digest of each file's name, size and modification time."""
    digest, size = hashlib.sha256(), 0
    for path in paths:
        try:
            stat = path.stat()
            seen = f"{stat.st_size} {stat.st_mtime_ns}"
            size += stat.st_size
        except OSError as error:  # a broken link: download will say so
            seen = str(error.strerror)
        digest.update(os.fsencode(path.relative_to(root)) + b"\0" + seen.encode() + b"\n")
    return {"folder": printable(root), "files": len(paths), "bytes": size, "digest": digest.hexdigest()}
