"""The one error the rules raise: a refusal with a machine code and a message for people."""


class WorkflowRefused(Exception):
    """An event the workflow does not allow, or allows only with something missing.

    `code` is for programs (API error codes, tests); `message` is Simplified Chinese for
    the people using the consoles and never carries case data, so it is safe to log.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
