"""User-facing errors: one line naming the file/row/value and the fix; the CLI prints it and exits 2."""


class UserError(Exception):
    """A fault the user can fix (bad input, missing file, wrong option); never a bug."""
