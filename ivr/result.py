"""What an IVR session learned about the call: the data attached to it for the ACD and the agent."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class OutcomeKind(StrEnum):
    TO_QUEUE = "to_queue"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"
    EXTERNAL = "external"  # transferred to an outside number
    HANGUP = "hangup"  # the IVR hung up, e.g. after a closed-office message
    SELF_SERVICE_COMPLETED = "self_service_completed"
    CALLER_HANGUP = "caller_hangup"  # the caller left before any other outcome


@dataclass(frozen=True)
class Outcome:
    """Where the call went; only the fields its kind uses are set."""

    kind: OutcomeKind
    queue: str = ""
    skills: tuple[str, ...] = ()
    priority: int = 0
    mailbox: str = ""
    number: str = ""


@dataclass
class IvrResult:
    """Filled in as the session runs; complete once ``finished`` is true.

    ``path`` lists every node visited as ``flow:node``; ``choices`` the menu digits pressed as
    ``(flow:node, digit)``. ``values`` holds collected digits, ``set`` values and the fields of
    balance/status lookups; ``scores`` the survey answers. ``partial`` marks a caller who hung up
    before the flow reached an outcome. ``notes`` says why a fallback was taken.
    """

    flow: str
    dnis: str
    ani: str
    path: list[str] = field(default_factory=list)
    choices: list[tuple[str, str]] = field(default_factory=list)
    values: dict[str, object] = field(default_factory=dict)
    scores: dict[str, int] = field(default_factory=dict)
    customer: dict[str, object] | None = None
    customer_account: str = ""
    outcome: Outcome | None = None
    partial: bool = False
    finished: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """Plain data (str, int, bool, list, dict, None), ready for JSON."""
        data = asdict(self)
        data["choices"] = [list(choice) for choice in self.choices]
        if self.outcome is not None:
            data["outcome"]["kind"] = str(self.outcome.kind)
            data["outcome"]["skills"] = list(self.outcome.skills)
        return data
