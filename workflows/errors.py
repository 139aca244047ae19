"""The one error the rules raise: a refusal with a machine code and a message for people."""


class WorkflowRefused(Exception):
    """An event the workflow does not allow, or allows only with something missing."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
