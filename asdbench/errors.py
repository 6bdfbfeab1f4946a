"""The one exception type the CLI turns into a one-line message instead of a traceback, and the one line of any
other exception's message that such a message quotes."""


class AsdbenchError(Exception):
    """A problem the user can fix: bad input, bad config, a missing plugin or file.

    The message must say what went wrong and where (a path, a key, a plugin name),
    because the CLI prints it alone, without a traceback.
    """


def reason(exc: BaseException, last: bool = False, limit: int = 200) -> str:
    """One line of ``exc``'s message, for a one-line error: the first (the last with ``last``, for messages that end
    in the error itself, as soundfile's and Ray's do), at most ``limit`` characters; the type's name when the message
    is empty."""
    lines = str(exc).strip().splitlines()
    return (lines[-1] if last else lines[0])[:limit] if lines else type(exc).__name__


def described(exc: BaseException, last: bool = False, limit: int = 200) -> str:
    """``TypeError: one line of its message`` (:func:`reason`), or the type's name alone when there is no message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {reason(exc, last, limit)}" if lines else type(exc).__name__
