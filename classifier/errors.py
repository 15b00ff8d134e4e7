"""User mistakes end a stage with one line and exit code 2, not a traceback."""

import sys


class UserError(Exception):
    """Something the user can fix: a bad param, a missing file, no network."""


def run(main):
    try:
        main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
