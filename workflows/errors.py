"""The errors the rules and the services raise: a refusal with a status class, a machine code
and a message for people. The edge maps them to the contract's JSON shape in one place
(`channels.errors.install`) and the consoles to a page or a notice; services never import
the web layer's error.

`code` is for programs (API error codes, tests); `message` is Simplified Chinese for the
people using the service and never carries case data, so it is safe to log.
"""


class DomainError(Exception):
    """Something the service refuses; subclasses say what kind (`status`, as HTTP has it)."""

    status = 409
    code = "conflict"
    message = "当前状态不允许此操作"

    def __init__(
        self,
        code: str | None = None,
        message: str | None = None,
        *,
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code or self.code}: {message or self.message}")
        self.code = code or self.code
        self.message = message or self.message
        # Which fields are wrong and what they take (the contract's `error.fields`).
        self.fields = fields


class Forbidden(DomainError):
    status, code, message = 403, "forbidden", "没有权限执行此操作"


class NotFound(DomainError):
    status, code, message = 404, "not_found", "未找到"


class Conflict(DomainError):
    """Not allowed in the current state (a closed case, a claim someone else won)."""


class Invalid(DomainError):
    status, code, message = 422, "validation_error", "提交的内容有误，请检查后重试"


class WorkflowRefused(Conflict):
    """An event the workflow does not allow, or allows only with something missing."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


class TooLarge(DomainError):
    """More than the service takes at once (a ledger's rows): split it and send again."""

    status, code, message = 413, "payload_too_large", "提交的内容过大"
