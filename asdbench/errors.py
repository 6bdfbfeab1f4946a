"""The one exception type the CLI turns into a one-line message instead of a traceback."""


class AsdbenchError(Exception):
    """A problem the user can fix: bad input, bad config, a missing plugin or file.

    The message must say what went wrong and where (a path, a key, a plugin name),
    because the CLI prints it alone, without a traceback.
    """
