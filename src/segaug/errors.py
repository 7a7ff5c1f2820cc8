"""User-facing errors.

A :class:`SegaugError` is a mistake the user can fix (bad config, corrupt file, unknown
class). Scripts print its message as one line and exit non-zero, never a stack trace.
"""


class SegaugError(Exception):
    """An error caused by user input: the message names the file or key and the fix."""
