"""The one exception the CLI turns into a clean one-line error."""


class VidcolorError(Exception):
    """A problem with the user's input or environment: the message says what is wrong and what to do."""
