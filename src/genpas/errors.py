"""The one exception type users see.

Every problem with user input (a file, a row, a field, an option) raises `GenpasError` with a single-line message
that names the culprit and, where possible, what to do. The CLI prints it as `error: ...` and exits with code 2;
API users can catch it like any exception.
"""


class GenpasError(Exception):
    """A user-facing error with a one-line message."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line


class OptionError(GenpasError):
    """A training option out of its range or of the wrong kind. `field` is the config key; the message names the
    command-line flag, and a reader of a config file renames it to the file and key (`TrainConfig.from_dict`)."""

    def __init__(self, field: str, flag: str, reason: str):
        self.field, self.reason = field, " ".join(str(reason).split())
        super().__init__(f"{flag} {self.reason}")
