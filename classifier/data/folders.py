"""The input contract of a folder of photos: one sub-folder per class, the
photos anywhere below it. `download` copies such a folder, `scan` sums it up."""

import os
from pathlib import Path

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
