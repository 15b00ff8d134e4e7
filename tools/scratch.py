"""Throw-away copies of the project: a committed git + DVC repository in a
temporary folder, with some params changed. Used by the tests and bench/."""

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("dvc.yaml", "params.yaml", "stages", "classifier", ".dvc/config", ".dvcignore", ".gitignore", "data/exclude.csv",
                 "data/relabel.csv", "data/reviewed.csv", "data/labelled.csv")


def merge(base, overrides):
    """Nested dicts: `overrides` written into `base`, key by key."""
    for key, value in overrides.items():
        if isinstance(value, dict):
            merge(base.setdefault(key, {}), value)
        else:
            base[key] = value
    return base


def set_params(directory, overrides):
    path = Path(directory) / "params.yaml"
    path.write_text(yaml.safe_dump(merge(yaml.safe_load(path.read_text()), overrides), sort_keys=False))


def project(directory, params=()):
    """Copy the project into `directory`, merge `params` into params.yaml, commit."""
    directory = Path(directory)
    for name in PROJECT_FILES:
        source, target = ROOT / name, directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    set_params(directory, dict(params))
    for command in (["git", "init", "-q"], ["git", "config", "user.name", "scratch"],
                    ["git", "config", "user.email", "scratch@example.com"],
                    ["git", "add", "-A"], ["git", "commit", "-qm", "project"]):
        subprocess.run(command, cwd=directory, check=True)
    return directory
