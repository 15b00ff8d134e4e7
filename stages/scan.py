"""Stage `scan`: sum up what `download` would read, into data/scan.json.

DVC cannot watch data.local_dir itself (it is outside the project, and DVC
cannot hash a file name that is not UTF-8), so this stage runs on every
`dvc repro` (always_changed) and writes the folder's file count, bytes and a
digest of every file's name, size and modification time, as make and rsync
judge change. `download` depends on that file: add, remove or edit a photo
and it reruns with everything after it; change nothing and DVC skips it.
"""

import hashlib
import os

from classifier import params
from classifier.data.folders import class_folders, files
from classifier.errors import run
from classifier.paths import SCAN, printable, write_json


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


def main():
    p = params.load()
    found = {"source": p.data.source}
    if p.data.source == "local":
        found.update(summary(p.data.local_dir))
    write_json(SCAN, found)


if __name__ == "__main__":
    run(main)
