"""The one error a command's helpers raise for the user's mistakes; `main` prints it as `error: ...`."""


class CommandError(Exception):
    """A mistake on the command line or in its files: the message is the whole line the user sees."""
