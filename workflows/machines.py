"""What the case and the referral machines share: python-statemachine states and events named
from a machine's label tables, and the refusal of a transition it does not have.

A state's value is spelled out because it is what the database stores; an event's Chinese
name makes the exported diagram read like the console.
"""

from dataclasses import dataclass

from statemachine import Event, State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

from workflows.errors import WorkflowRefused


@dataclass(frozen=True)
class Labels:
    """A machine's label tables: `states` (stored value → 中文) and `events` (id → 中文);
    `subject` names the state in a refusal (当前状态, 转介状态)."""

    states: dict[str, str]
    events: dict[str, str]
    subject: str

    def state(self, value: str, **kwargs) -> State:
        return State(self.states[value], value=value, **kwargs)

    def event(self, transitions, event_id: str) -> Event:
        # An explicit id: `return` is a keyword, so that event lives in attribute `return_`.
        return Event(transitions, id=event_id, name=self.events[event_id])

    def refusal(self, state: str, event: str) -> WorkflowRefused:
        label = self.states.get(state, state)
        return WorkflowRefused(
            "transition_not_allowed", f"{self.subject}「{label}」不允许执行「{self.events[event]}」"
        )

    def send(
        self, machine: type[StateMachine], model: object, field: str, event: str, **kwargs
    ) -> None:
        """Run `event` on `model` (its state in attribute `field`, which the machine moves);
        a transition the machine does not have from there is refused, the state as it was."""
        state = getattr(model, field)
        try:
            machine(model=model, state_field=field).send(event, **kwargs)
        except TransitionNotAllowed as exc:
            raise self.refusal(state, event) from exc


def require_text(text: str | None, code: str, message: str) -> None:
    """A guard's check of a reason, an outcome, a note: refused when empty or blank."""
    if not (text and text.strip()):
        raise WorkflowRefused(code, message)
