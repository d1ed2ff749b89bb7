"""Phones in the lab: sipp user agents that Asterisk dials, for agents and callback customers.

A Phone is one sipp UAS on 127.0.0.1 serving call after call until stopped. Asterisk reaches
it through the lab's `trunk` endpoint with any user part (`PJSIP/trunk/sip:agent1@127.0.0.1:PORT`),
so one Phone can stand for many numbers. It rings, then answers, or never answers (taking
Asterisk's CANCEL), or is busy; an answered call lasts until Asterisk sends BYE.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cti.lab.sipp import free_udp_port, launch, reply, scenario_document, sdp, udp_port_free

START_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PhonePlan:
    # Ringing time before answering; None: rings until Asterisk gives up and CANCELs.
    answer_after_ms: int | None = 300
    # Answer every INVITE with 486 Busy Here (answer_after_ms is then ignored).
    busy: bool = False

    def __post_init__(self) -> None:
        if self.answer_after_ms is not None and self.answer_after_ms < 0:
            raise ValueError(f"answer_after_ms {self.answer_after_ms}: must be >= 0 or None")


def phone_scenario(plan: PhonePlan) -> str:
    """The UAS scenario for one call; sipp runs it for every INVITE with a new Call-ID."""
    if plan.busy:
        steps = [reply("486 Busy Here", to_tag=True), '<recv request="ACK"/>']
    else:
        ringing = ['<recv request="CANCEL"/>'] if plan.answer_after_ms is None \
            else [*_ring(plan.answer_after_ms), *_ANSWERED]
        steps = [reply("180 Ringing", to_tag=True), *ringing, *_CANCELLED]
    return scenario_document("cti lab phone", ['<recv request="INVITE"/>', *steps, '<label id="done"/>'])


def _ring(milliseconds: int) -> list[str]:
    # A receive timeout is sipp's only wait that also notices a CANCEL (sipp reads timeout 0
    # as "no timeout", hence no wait at all then).
    if milliseconds == 0:
        return []
    return [f'<recv request="CANCEL" timeout="{milliseconds}" ontimeout="answer" next="cancelled"/>',
            '<label id="answer"/>']


_ANSWERED = [
    reply("200 OK", to_tag=True, body=sdp(), retrans=True),
    # A CANCEL that crossed our 200 changes nothing (RFC 3261 9.2): confirm it, await the ACK.
    '<label id="await_ack"/>',
    '<recv request="CANCEL" optional="true" next="late_cancel"/>',
    '<recv request="ACK"/>',
    # Asterisk may re-INVITE during the call (connected line, media changes); UPDATE gets -aa.
    '<label id="talking"/>',
    '<recv request="INVITE" optional="true" next="reinvite"/>',
    '<recv request="BYE"/>',
    reply("200 OK", next_label="done"),
    '<label id="late_cancel"/>',
    reply("200 OK", next_label="await_ack"),
    '<label id="reinvite"/>',
    reply("200 OK", body=sdp(), retrans=True),
    '<recv request="ACK" next="talking"/>',
]

# A CANCEL's CSeq number is its INVITE's; the 487 must carry the INVITE method.
_CANCELLED = [
    '<label id="cancelled"/>',
    reply("200 OK"),
    reply("487 Request Terminated", to_tag=True, cseq="CSeq: [last_cseq_number] INVITE"),
    '<recv request="ACK"/>',
]


class Phone:
    """One sipp UAS in the background. Use as a context manager, or start() and stop().

    Its logs live in `workdir`; a work dir of its own making is removed by stop().
    """

    def __init__(self, plan: PhonePlan = PhonePlan(), port: int | None = None,
                 workdir: Path | None = None) -> None:
        self.plan = plan
        self.port = port or free_udp_port()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="cti-phone-"))
        self.process: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def uri(self, user: str) -> str:
        return f"sip:{user}@127.0.0.1:{self.port}"

    def dial_string(self, user: str, endpoint: str = "trunk") -> str:
        return f"PJSIP/{endpoint}/{self.uri(user)}"

    def start(self) -> Phone:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / "stderr.log").open("wb") as stderr:
            self.process = launch(phone_scenario(self.plan), self.workdir, self.port,
                                  ["-aa", "-trace_msg", "-message_file", str(self.messages_log),
                                   "-trace_shortmsg", "-shortmessage_file", str(self._short_log)], stderr)
        self._wait_listening()
        return self

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Phone:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    # --- what the phone saw, from sipp's message logs ----------------------------------------

    @property
    def messages_log(self) -> Path:
        """Every SIP message sent and received, in full: for a failing test to show."""
        return self.workdir / "messages.log"

    def invites(self) -> int:
        """Calls offered: INVITEs received, one per call (retransmissions and re-INVITEs aside)."""
        return len(self._calls("R", "INVITE", "INVITE"))

    def answered(self) -> int:
        """Calls answered: a 200 OK sent to their INVITE."""
        return len(self._calls("S", "SIP/2.0 200", "INVITE"))

    def byes(self) -> int:
        """Calls Asterisk hung up after they were answered."""
        return len(self._calls("R", "BYE", "BYE"))

    def log(self) -> str:
        """The message log's text ("" before the first message)."""
        return self.messages_log.read_text(errors="replace") if self.messages_log.exists() else ""

    @property
    def _short_log(self) -> Path:
        return self.workdir / "short.log"

    def _calls(self, direction: str, first_line: str, method: str) -> set[str]:
        """Call-IDs of the messages that went `direction` (S sent, R received) and match."""
        return {row.call_id for row in self._short_messages()
                if row.direction == direction and row.first_line.startswith(first_line) and row.method == method}

    def _short_messages(self) -> list[_ShortMessage]:
        try:
            lines = self._short_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        return [message for line in lines if (message := _ShortMessage.parse(line))]

    def _wait_listening(self) -> None:
        # Asterisk's first INVITE must not beat sipp to its socket.
        deadline = time.monotonic() + START_TIMEOUT_S
        while udp_port_free(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sipp phone did not start on UDP {self.port}: "
                                   + (self.workdir / "stderr.log").read_text(errors="replace")[-500:])
            time.sleep(0.02)


class _ShortMessage(NamedTuple):
    direction: str
    call_id: str
    method: str  # the CSeq's: a response's too
    first_line: str

    @classmethod
    def parse(cls, line: str) -> _ShortMessage | None:
        # sipp -trace_shortmsg: date, time, epoch, S|R, Call-ID, "CSeq:N METHOD", first line.
        fields = line.split("\t")
        if len(fields) < 7:
            return None
        return cls(fields[3], fields[4], fields[5].rsplit(" ", 1)[-1], fields[6])
