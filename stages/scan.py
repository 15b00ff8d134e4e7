"""Stage `scan`: sum up what `download` would read, into data/scan.json.

DVC cannot watch data.local_dir itself (it is outside the project, and DVC
cannot hash a file name that is not UTF-8), so this stage runs on every
`dvc repro` (always_changed) and writes the folder's file count, bytes and a
digest of every file's name, size and modification time, as make and rsync
judge change. `download` depends on that file: add, remove or edit a photo
and it reruns with everything after it; change nothing and DVC skips it.
"""

from classifier import params
from classifier.data.folders import summary
from classifier.errors import run
from classifier.files import write_json
from classifier.paths import SCAN


def main():
    p = params.load()
    found = {"source": p.data.source}
    if p.data.source == "local":
        found.update(summary(p.data.local_dir))
    write_json(SCAN, found)


if __name__ == "__main__":
    run(main)
