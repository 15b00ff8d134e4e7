"""Stage `download`: bring the images into data/raw/<class>/, one folder per class."""

import shutil
from pathlib import Path

from tqdm import tqdm

from stages import params
from stages.errors import UserError, run
from stages.paths import RAW


def class_folders(root):
    """Sub-folders of root, one per class; hidden folders are not classes."""
    folders = sorted(d for d in Path(root).iterdir() if d.is_dir() and not d.name.startswith("."))
    if not folders:
        raise UserError(f"{root} has no class sub-folders (expected e.g. {root}/cat/, {root}/dog/)")
    return folders


def copy_local(root, destination, max_per_class):
    """Copy every file under each class folder (bad ones too: `clean` reports them)."""
    root = Path(root)
    loose = [f.name for f in root.iterdir() if f.is_file()]
    if loose:
        print(f"download: ignoring {len(loose)} file(s) directly in {root} (not in a class folder)")
    for folder in class_folders(root):
        files = sorted(f for f in folder.rglob("*") if f.is_file())
        if max_per_class is not None:
            files = files[:max_per_class]
        for source in tqdm(files, desc=f"copy {folder.name}", unit="file"):
            target = destination / folder.name / source.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def main():
    p = params.load()
    if RAW.exists():
        shutil.rmtree(RAW)
    RAW.mkdir(parents=True)
    if p.data.source == "local":
        copy_local(p.data.local_dir, RAW, p.data.max_per_class)
    else:
        raise UserError(f"data.source = {p.data.source} is not available yet: use local")


if __name__ == "__main__":
    run(main)
