"""Stage `download`: bring the images into data/raw/<class>/, one folder per class.

Sources (data.source): petimages, kaggle and cifar10 from the network (see
stages/sources.py), or local, a folder of class sub-folders. Every file is
passed on, bad ones too: `clean` decides, and reports what it drops.
"""

import shutil
import tempfile
from pathlib import Path

from tqdm import tqdm

from stages import params, sources
from stages.errors import UserError, run
from stages.paths import RAW


def class_folders(root):
    """Sub-folders of root, one per class; hidden folders are not classes."""
    folders = sorted(d for d in Path(root).iterdir() if d.is_dir() and not d.name.startswith("."))
    if not folders:
        raise UserError(f"{root} has no class sub-folders (expected e.g. {root}/cat/, {root}/dog/)")
    return folders


def collect(root, destination, max_per_class, move=False):
    """Copy (or move) every file of each class folder, the first max_per_class by name."""
    root = Path(root)
    loose = [f.name for f in root.iterdir() if f.is_file()]
    if loose:
        print(f"download: ignoring {len(loose)} file(s) directly in {root} (not in a class folder)")
    place = shutil.move if move else shutil.copyfile
    for folder in class_folders(root):
        files = sorted(f for f in folder.rglob("*") if f.is_file())
        if max_per_class is not None:
            files = files[:max_per_class]
        for source in tqdm(files, desc=f"{folder.name}", unit="file"):
            target = destination / folder.name / source.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            place(source, target)


def main():
    p = params.load()
    if RAW.exists():
        shutil.rmtree(RAW)
    RAW.mkdir(parents=True)
    if p.data.source == "local":
        collect(p.data.local_dir, RAW, p.data.max_per_class)
        return
    # Unpack beside data/raw (same disk), so that moving the files is instant.
    with tempfile.TemporaryDirectory(dir=RAW.parent, prefix="unpack-") as work:
        collect(sources.fetch(p.data, work), RAW, p.data.max_per_class, move=True)


if __name__ == "__main__":
    run(main)
