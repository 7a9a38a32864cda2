"""User-facing error type shared by every command line tool and library entry point."""


class AgrilandError(Exception):
    """A problem the user can fix (missing file, bad JSON, wrong shape); printed without a traceback."""
