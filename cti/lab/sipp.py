"""Calls into the lab placed by sipp (Debian's sip-tester), with a scenario written per call.

sipp's stock uac scenario sets the caller id to "sipp" and fails when the far end hangs up
first. Ours sets the caller number and name, sends DTMF as SIP INFO (the lab trunk uses
dtmf_mode=info), and accepts a BYE from Asterisk at any wait. The XML helpers (scenario_document,
reply, sdp) and launch() also serve the lab's phones (cti.lab.phones).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

DTMF_CHARS = set("0123456789*#")


@dataclass(frozen=True)
class CallPlan:
    caller_number: str
    caller_name: str
    dialled: str
    # DTMF groups: each is sent digit by digit after waiting `dtmf_gap_ms`.
    dtmf: tuple[str, ...] = ()
    dtmf_gap_ms: int = 1500
    # Time to stay on the line after the last DTMF before hanging up ourselves.
    hold_ms: int = 3000
    first_dtmf_after_ms: int = 2000

    def __post_init__(self) -> None:
        for group in self.dtmf:
            if not set(group) <= DTMF_CHARS:
                raise ValueError(f"DTMF {group!r}: only 0-9, * and # can be sent")
        if not self.caller_number.replace("+", "").isdigit():
            raise ValueError(f"caller number {self.caller_number!r}: digits only, optional leading +")
        if any(c in self.caller_name for c in '"\r\n<>'):
            raise ValueError(f"caller name {self.caller_name!r}: no quotes, angle brackets or line breaks")


class ScenarioBuilder:
    """Builds one sipp UAC scenario: INVITE, ACK, INFO per digit, then BYE (or accept BYE)."""

    def __init__(self, plan: CallPlan) -> None:
        self.plan = plan
        self.cseq = 1
        self.steps: list[str] = []
        self.labels = 0

    def build(self) -> str:
        self._invite()
        wait = self.plan.first_dtmf_after_ms
        for group in self.plan.dtmf:
            for index, digit in enumerate(group):
                self._wait_or_bye(wait if index == 0 else 250)
                self._info(digit)
            wait = self.plan.dtmf_gap_ms
        self._wait_or_bye(self.plan.hold_ms if not self.plan.dtmf else wait + self.plan.hold_ms)
        self._bye()
        return scenario_document("cti lab call", [*self.steps, '<label id="far_end_bye"/>', reply("200 OK"),
                                                  '<label id="done"/>'])

    def _invite(self) -> None:
        number, name = self.plan.caller_number, escape(self.plan.caller_name)
        self.steps.append(_INVITE.format(number=number, name=name, sdp=sdp(telephone_event=True)))
        self.steps.append(_ACK.format(number=number, name=name))

    def _wait_or_bye(self, milliseconds: int) -> None:
        # A recv with a timeout is the only wait in sipp that also notices a BYE from Asterisk.
        self.labels += 1
        label = f"step{self.labels}"
        self.steps.append(f'<recv request="BYE" timeout="{milliseconds}" ontimeout="{label}" next="far_end_bye"/>')
        self.steps.append(f'<label id="{label}"/>')

    def _info(self, digit: str) -> None:
        self.cseq += 1
        self.steps.append(_INFO.format(cseq=self.cseq, number=self.plan.caller_number, digit=digit))
        self.steps.append('<recv request="BYE" optional="true" next="far_end_bye"/>')
        self.steps.append('<recv response="200"/>')

    def _bye(self) -> None:
        self.cseq += 1
        self.steps.append(_BYE.format(cseq=self.cseq, number=self.plan.caller_number))
        self.steps.append('<recv response="200" timeout="5000"/>')
        self.steps.append('<nop next="done"/>')


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_call(plan: CallPlan, sip_port: int, workdir: Path | None = None) -> subprocess.Popen:
    """Start sipp for one call; the caller waits on the returned process (exit 0 = success)."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="cti-sipp-"))
    return launch(ScenarioBuilder(plan).build(), workdir, free_udp_port(),
                  [f"127.0.0.1:{sip_port}", "-m", "1", "-s", plan.dialled, "-aa", "-timeout", "120s"])


def launch(scenario: str, workdir: Path, local_port: int, extra: list[str],
           stderr: int | IO = subprocess.PIPE) -> subprocess.Popen:
    """Write `scenario` into `workdir` and start sipp on it at 127.0.0.1:`local_port`."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp not found: apt-get install sip-tester")
    path = workdir / "scenario.xml"
    path.write_text(scenario, encoding="utf-8")
    argv = [sipp, "-sf", str(path), "-i", "127.0.0.1", "-p", str(local_port), "-mp", str(free_media_port()),
            "-nostdin", "-trace_err", "-error_file", str(workdir / "errors.log"), *extra]
    return subprocess.Popen(argv, cwd=workdir, stdout=subprocess.DEVNULL, stderr=stderr,
                            env=os.environ | {"LC_ALL": "C.UTF-8"})


def run_call(plan: CallPlan, sip_port: int, timeout: float = 120.0) -> tuple[bool, str]:
    """Place one call and wait for it; returns (succeeded, sipp's complaint if any)."""
    workdir = Path(tempfile.mkdtemp(prefix="cti-sipp-"))
    process = start_call(plan, sip_port, workdir)
    _, stderr = process.communicate(timeout=timeout)
    errors = workdir / "errors.log"
    complaint = (errors.read_text(errors="replace") if errors.exists() else "") + stderr.decode(errors="replace")
    shutil.rmtree(workdir, ignore_errors=True)
    # Our waits are receive timeouts by design; sipp reports each one. Keep the real complaints.
    lines = [line for line in complaint.splitlines() if line.strip() and "jumping to label" not in line
             and "The following events occurred" not in line and "Resolving remote host" not in line]
    return process.returncode == 0, "\n".join(lines)


def free_media_port() -> int:
    # sipp binds RTP on the port and RTCP on port+1 (and video on +2/+3): keep them apart
    # from other concurrent sipp instances.
    for _ in range(50):
        port = free_udp_port() & ~3
        if port > 1024 and all(udp_port_free(port + offset) for offset in range(4)):
            return port
    raise RuntimeError("no free UDP port block for sipp media")


def udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def scenario_document(name: str, steps: list[str]) -> str:
    return _SCENARIO.format(name=escape(name), steps="\n".join(steps))


def reply(status: str, *, to_tag: bool = False, cseq: str = "[last_CSeq:]", body: str = "",
          retrans: bool = False, next_label: str | None = None) -> str:
    """A <send> answering the last request received (sipp's [last_*] headers).

    `to_tag` adds our tag to the To header, as the first response of a dialog must. `body` is SDP.
    `next_label` jumps from the send itself: a <nop next> after it would leave a moment in which
    sipp stands on the nop and takes the peer's next request as unexpected.
    """
    to = "[last_To:];tag=[pid]SIPpTag01[call_number]" if to_tag else "[last_To:]"
    content = f"Content-Type: application/sdp\nContent-Length: [len]\n\n{body}" if body else "Content-Length: 0"
    attributes = (' retrans="500"' if retrans else "") + (f' next="{next_label}"' if next_label else "")
    return f"""<send{attributes}><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
{to}
[last_Call-ID:]
{cseq}
Contact: <sip:[local_ip]:[local_port]>
{content}
]]></send>"""


def sdp(telephone_event: bool = False) -> str:
    """PCMU audio at sipp's media address; nothing needs to flow for Asterisk to bridge it."""
    payloads = "0 101" if telephone_event else "0"
    events = "a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\n" if telephone_event else ""
    return f"""v=0
o=- 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP {payloads}
a=rtpmap:0 PCMU/8000
{events}a=sendrecv"""


_SCENARIO = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
{steps}
</scenario>
"""

_INVITE = """<send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "{name}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{number}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{sdp}
]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
<recv response="200" rtd="true"/>"""

_ACK = """<send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "{name}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:{number}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
]]></send>"""

_INFO = """<send><![CDATA[
INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} INFO
Contact: <sip:{number}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal={digit}
Duration=160
]]></send>"""

_BYE = """<send><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} BYE
Contact: <sip:{number}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
]]></send>"""
