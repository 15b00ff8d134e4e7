"""What `predict` is given: files, folders and globs, as (path, problem) pairs.
Photos here are untrusted: a link that leads outside the folder or nowhere,
and a folder that cannot be read, are each one error line, never a stop.
Linked folders are not entered, by the folder walk nor by a glob's `**`."""

import os
from pathlib import Path

from wcmatch import glob

from classifier.data.images import BadImage
from classifier.paths import printable

# `**` does not enter linked folders: two links to `.` would repeat every path forever.
GLOB = glob.GLOBSTAR | glob.BRACE


def expand(paths):
    """(path, problem) pairs: files as given, folders walked, globs expanded;
    problem is None or the BadImage to report instead of reading the file."""
    for given in paths:
        path = Path(given)
        if not os.path.lexists(path) and glob.is_magic(given, flags=GLOB):
            yield from expand(sorted(glob.glob(given, flags=GLOB)))
        elif path.is_dir():
            yield from walk(path)
        else:
            yield path, None


def walk(folder):
    """The files under `folder`, sorted, hidden ones left out. Linked folders are
    not entered; a symlink that leads outside the folder, or nowhere, and a
    folder that cannot be read are error lines."""
    root = folder.resolve()
    found = []

    def unreadable(error):
        found.append((Path(error.filename), BadImage("unreadable", f"a folder: {error.strerror}")))

    for top, dirs, files in os.walk(folder, onerror=unreadable):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        for name in [*dirs, *files]:
            path = Path(top) / name
            if name.startswith("."):
                continue
            if path.is_symlink():
                problem = link_problem(path, root, folder)
                if problem:
                    found.append((path, problem))
                    continue
            if name in files:
                found.append((path, None))
    return sorted(found, key=lambda pair: pair[0])


def relative(folder):
    """walk(folder) with each path relative to the folder: the unlabelled pool's files."""
    folder = Path(folder)
    return [(path.relative_to(folder), problem) for path, problem in walk(folder)]


def link_problem(path, root, folder):
    """Why the symlink `path` is not followed, or None."""
    try:
        target = path.resolve()
    except (OSError, RuntimeError) as error:  # Python 3.11 raises RuntimeError for a loop
        return BadImage("broken_link", str(error))
    if not target.is_relative_to(root):
        return BadImage("symlink_outside", f"leads to {printable(os.readlink(path))}, outside {printable(folder)}; not followed")
    return None
