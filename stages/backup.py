"""What a killed stage leaves behind to resume from: backup/<stage>/.

Not a DVC output, so DVC neither deletes it before the rerun nor caches it. A
backup is used only by a run with the same params.yaml and the same split
(otherwise it is discarded), and removed when the stage completes.
"""

import hashlib
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from stages.params import PARAMS_FILE
from stages.paths import MANIFEST

BACKUP = Path("backup")


def fingerprint():
    digest = hashlib.sha256()
    for path in (PARAMS_FILE, MANIFEST):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def folder(name):
    """backup/<name>/: the one a killed run left (said on stdout), or a new, empty one."""
    path = BACKUP / name
    stamp = path / "fingerprint"
    if path.exists() and (not stamp.exists() or stamp.read_text() != fingerprint()):
        print(f"{name}: params or split changed since the backup in {path}; starting over")
        shutil.rmtree(path)
    if path.exists():
        print(f"{name}: resuming from the backup in {path}")
    else:
        path.mkdir(parents=True)
        stamp.write_text(fingerprint())
    return path


def remove(name):
    shutil.rmtree(BACKUP / name, ignore_errors=True)
    if BACKUP.exists() and not any(BACKUP.iterdir()):
        BACKUP.rmdir()


@contextmanager
def scratch(name):
    """A temporary folder under backup/ (on the project's disk, ignored by Git),
    removed on exit: for large intermediate arrays that must not fill memory.
    One a killed run left behind is removed first."""
    for stale in BACKUP.glob(f"{name}-*"):
        shutil.rmtree(stale)
    BACKUP.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=BACKUP) as path:
        yield Path(path)
    if not any(BACKUP.iterdir()):
        BACKUP.rmdir()
