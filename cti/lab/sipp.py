"""Calls into the lab placed by sipp (Debian's sip-tester), with a scenario written per call.

sipp's stock uac scenario sets the caller id to "sipp" and fails when the far end hangs up
first. Ours sets the caller number and name, sends DTMF, and accepts a BYE from Asterisk at any
wait. The XML helpers (scenario_document, reply, sdp) and launch() also serve the lab's phones
(cti.lab.phones).

DTMF goes one of two ways (CallPlan.dtmf_mode), both verified on the lab by the e2e tests:

- "info" (the default): a SIP INFO per digit, to the lab's `trunk` endpoint (dtmf_mode=info).
- "rfc2833": RFC 4733 telephone-events in the RTP, played by sipp (`play_pcap_audio`) from
  sip-tester's captures (/usr/share/sip-tester/dtmf_2833_*.pcap), to the `trunk-rfc4733`
  endpoint (dtmf_mode=rfc4733), which the INVITE's X-CTI-DTMF header selects. The captures are
  renumbered per call (rfc2833_pcap): as packaged they are slices of one stream, and Asterisk
  drops a replayed or earlier slice as "out of order" (a repeated digit, 1 after 2), so most
  digit strings would not get through. sipp sends pcaps through a raw socket: this mode needs
  root.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

DTMF_CHARS = set("0123456789*#")
DTMF_MODES = ("info", "rfc2833")
# The INVITE header that makes the lab take a call as PJSIP/trunk-rfc4733 (config/lab/pjsip.conf).
RFC4733_HEADER = "X-CTI-DTMF: rfc4733"
SIPP_PCAPS = Path("/usr/share/sip-tester")
_PCAP_KEY_NAMES = {"*": "star", "#": "pound"}
# Between the digits of a group. A capture plays for 140 ms; sipp stops a play still running
# when the next one starts, so digits must be further apart than that.
DIGIT_SPACING_MS = 250


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
    # "info": SIP INFO; "rfc2833": RFC 4733 events in the RTP (needs root, see the module doc).
    dtmf_mode: str = "info"

    def __post_init__(self) -> None:
        if self.dtmf_mode not in DTMF_MODES:
            raise ValueError(f"DTMF mode {self.dtmf_mode!r}: one of {', '.join(DTMF_MODES)}")
        for group in self.dtmf:
            if not set(group) <= DTMF_CHARS:
                raise ValueError(f"DTMF {group!r}: only 0-9, * and # can be sent")
        if not self.caller_number.replace("+", "").isdigit():
            raise ValueError(f"caller number {self.caller_number!r}: digits only, optional leading +")
        if any(c in self.caller_name for c in '"\r\n<>'):
            raise ValueError(f"caller name {self.caller_name!r}: no quotes, angle brackets or line breaks")


class ScenarioBuilder:
    """Builds one sipp UAC scenario: INVITE, ACK, a DTMF step per digit, then BYE (or accept BYE).

    In rfc2833 mode the scenario plays pcap files named in `pcaps` (name: content), which must
    lie next to the scenario file (start_call puts them there).
    """

    def __init__(self, plan: CallPlan) -> None:
        self.plan = plan
        self.cseq = 1
        self.steps: list[str] = []
        self.labels = 0
        self.pcaps: dict[str, bytes] = {}
        self.elapsed_ms = 0
        self.rtp_seq = 1

    def build(self) -> str:
        self._invite()
        wait = self.plan.first_dtmf_after_ms
        for group in self.plan.dtmf:
            for index, digit in enumerate(group):
                self._wait_or_bye(wait if index == 0 else DIGIT_SPACING_MS)
                if self.plan.dtmf_mode == "rfc2833":
                    self._rfc2833(digit)
                else:
                    self._info(digit)
            wait = self.plan.dtmf_gap_ms
        self._wait_or_bye(self.plan.hold_ms if not self.plan.dtmf else wait + self.plan.hold_ms)
        self._bye()
        return scenario_document("cti lab call", [*self.steps, '<label id="far_end_bye"/>', reply("200 OK"),
                                                  '<label id="done"/>'])

    def _invite(self) -> None:
        number, name = self.plan.caller_number, escape(self.plan.caller_name)
        headers = f"{RFC4733_HEADER}\n" if self.plan.dtmf_mode == "rfc2833" else ""
        self.steps.append(_INVITE.format(number=number, name=name, headers=headers, sdp=sdp(telephone_event=True)))
        self.steps.append(_ACK.format(number=number, name=name))

    def _wait_or_bye(self, milliseconds: int) -> None:
        # A recv with a timeout is the only wait in sipp that also notices a BYE from Asterisk.
        self.labels += 1
        label = f"step{self.labels}"
        self.steps.append(f'<recv request="BYE" timeout="{milliseconds}" ontimeout="{label}" next="far_end_bye"/>')
        self.steps.append(f'<label id="{label}"/>')
        self.elapsed_ms += milliseconds

    def _info(self, digit: str) -> None:
        self.cseq += 1
        self.steps.append(_INFO.format(cseq=self.cseq, number=self.plan.caller_number, digit=digit))
        self.steps.append('<recv request="BYE" optional="true" next="far_end_bye"/>')
        self.steps.append('<recv response="200"/>')

    def _rfc2833(self, digit: str) -> None:
        # One stream for the call: sequence numbers go on from digit to digit, and each event's
        # timestamp is the time since the answer, in 8 kHz samples.
        name = f"dtmf{len(self.pcaps) + 1:02d}.pcap"
        self.pcaps[name], self.rtp_seq = rfc2833_pcap(digit, self.rtp_seq, self.elapsed_ms * 8)
        # sipp sends it from our media port to the address and port of Asterisk's SDP answer.
        self.steps.append(f'<nop><action><exec play_pcap_audio="{name}"/></action></nop>')

    def _bye(self) -> None:
        self.cseq += 1
        self.steps.append(_BYE.format(cseq=self.cseq, number=self.plan.caller_number))
        self.steps.append('<recv response="200" timeout="5000"/>')
        self.steps.append('<nop next="done"/>')


def rfc2833_pcap(digit: str, first_seq: int, timestamp: int) -> tuple[bytes, int]:
    """sip-tester's capture of `digit` as the next event of a stream: (pcap, next sequence number).

    The RTP packets get sequence numbers from `first_seq` on (the capture's gaps and repeated
    end packets kept) and `timestamp`; the UDP checksums are cleared, as sipp computes its own.
    """
    path = SIPP_PCAPS / f"dtmf_2833_{_PCAP_KEY_NAMES.get(digit, digit)}.pcap"
    if not path.is_file():
        raise RuntimeError(f"{path} missing: apt-get install sip-tester")
    data = bytearray(path.read_bytes())
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    link_header = {1: 14, 113: 16}[struct.unpack_from(order + "I", data, 20)[0]]  # Ethernet, Linux cooked
    offset, first, last = 24, None, 0
    while offset < len(data):
        captured = struct.unpack_from(order + "I", data, offset + 8)[0]
        ip = offset + 16 + link_header
        if data[ip] >> 4 != 4:
            raise RuntimeError(f"{path}: not an IPv4 capture")
        udp = ip + (data[ip] & 0x0F) * 4
        # The RTP header follows the UDP one: sequence number at +2, timestamp at +4.
        seq = struct.unpack_from(">H", data, udp + 10)[0]
        first = seq if first is None else first
        last = max(last, (seq - first) & 0xFFFF)
        struct.pack_into(">HI", data, udp + 10, (first_seq + seq - first) & 0xFFFF, timestamp & 0xFFFFFFFF)
        struct.pack_into(">H", data, udp + 6, 0)
        offset += 16 + captured
    return bytes(data), (first_seq + last + 1) & 0xFFFF


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_call(plan: CallPlan, sip_port: int, workdir: Path | None = None) -> subprocess.Popen:
    """Start sipp for one call; the caller waits on the returned process (exit 0 = success)."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="cti-sipp-"))
    builder = ScenarioBuilder(plan)
    scenario = builder.build()
    for name, content in builder.pcaps.items():
        (workdir / name).write_bytes(content)
    return launch(scenario, workdir, free_udp_port(),
                  [f"127.0.0.1:{sip_port}", "-m", "1", "-s", plan.dialled, "-aa", "-timeout", "120s"])


def launch(scenario: str, workdir: Path, local_port: int, extra: list[str],
           stderr: int | IO = subprocess.PIPE) -> subprocess.Popen:
    """Write `scenario` into `workdir` and start sipp on it at 127.0.0.1:`local_port`."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp not found: apt-get install sip-tester")
    path = workdir / "scenario.xml"
    path.write_text(scenario, encoding="utf-8")
    argv = [sipp, "-sf", str(path), "-i", "127.0.0.1", "-p", str(local_port), "-mp", str(free_media_port(local_port)),
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
    # Our waits are receive timeouts by design; sipp reports each one, and describes each pcap it
    # loads. Keep the real complaints.
    lines = [line for line in complaint.splitlines() if line.strip() and "jumping to label" not in line
             and "The following events occurred" not in line and "Resolving remote host" not in line
             and not line.startswith(("In pcap ", "max pkt length ", "base port "))]
    return process.returncode == 0, "\n".join(lines)


def free_media_port(sip_port: int) -> int:
    """A block of four free UDP ports for sipp's media, apart from its own SIP port.

    sipp binds RTP on the port and RTCP on port+1 (and video on +2/+3): keep them apart from
    other concurrent sipp instances. The SIP port is not bound yet when this runs, so it looks
    free: a block holding it made sipp fail with "Unable to bind video RTP socket".
    """
    for _ in range(50):
        port = free_udp_port() & ~3
        block = range(port, port + 4)
        if port > 1024 and sip_port not in block and all(udp_port_free(candidate) for candidate in block):
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
{headers}Content-Type: application/sdp
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
