import struct
import xml.etree.ElementTree as ElementTree

import pytest

from cti.lab import sipp
from cti.lab.sipp import RFC4733_HEADER, SIPP_PCAPS, CallPlan, ScenarioBuilder, rfc2833_pcap

needs_pcaps = pytest.mark.skipif(not (SIPP_PCAPS / "dtmf_2833_1.pcap").is_file(),
                                 reason="sip-tester's DTMF pcaps are not installed")
EVENTS = {**{str(n): n for n in range(10)}, "*": 10, "#": 11}


def test_scenario_is_valid_xml_with_caller_identity_and_one_info_per_digit():
    plan = CallPlan("5551234", "José Müller", "100", dtmf=("1", "12345#"))
    text = ScenarioBuilder(plan).build()
    root = ElementTree.fromstring(text.encode())
    sends = [element.text for element in root.iter("send")]
    assert '"José Müller" <sip:5551234@' in sends[0]
    infos = [s for s in sends if s.lstrip().startswith("INFO")]
    assert [line.split("=")[1] for s in infos for line in s.splitlines() if line.startswith("Signal=")] == \
        list("112345#")
    cseqs = [line for s in sends for line in s.splitlines() if line.startswith("CSeq:") and "INFO" in line]
    assert len(set(cseqs)) == len(cseqs) == 7  # each INFO is a new request
    assert any(s.lstrip().startswith("BYE") for s in sends)


def test_the_default_info_mode_plays_no_pcap_and_adds_no_header():
    builder = ScenarioBuilder(CallPlan("5551234", "Caller", "100", dtmf=("1",)))
    text = builder.build()
    assert builder.pcaps == {} and "play_pcap_audio" not in text and "X-CTI-DTMF" not in text
    assert "Max-Forwards: 70\nContent-Type: application/sdp" in text


@needs_pcaps
def test_rfc2833_plays_one_pcap_per_digit_and_asks_for_the_rfc4733_endpoint():
    builder = ScenarioBuilder(CallPlan("5551234", "Caller", "100", dtmf=("1", "1", "12345#"), dtmf_mode="rfc2833"))
    root = ElementTree.fromstring(builder.build().encode())
    sends = [element.text for element in root.iter("send")]
    assert f"\n{RFC4733_HEADER}\n" in sends[0] and sends[0].lstrip().startswith("INVITE")
    assert "a=rtpmap:101 telephone-event/8000" in sends[0]  # the pcaps' payload type
    assert not [s for s in sends if s.lstrip().startswith("INFO")]
    played = [element.get("play_pcap_audio") for element in root.iter("exec")]
    assert played == sorted(builder.pcaps) and len(played) == 8
    events = [_rtp(builder.pcaps[name]) for name in played]
    assert [packets[0]["event"] for packets in events] == [EVENTS[d] for d in "1112345#"]
    for packets in events:
        assert {p["pt"] for p in packets} == {101} and packets[-1]["end"] and packets[0]["marker"]
        assert len({p["ts"] for p in packets}) == 1 and {p["udp_checksum"] for p in packets} == {0}
    # One stream: sequence numbers go on from pcap to pcap, each event has a later timestamp.
    for earlier, later in zip(events, events[1:]):
        assert later[0]["seq"] == max(p["seq"] for p in earlier) + 1
        assert later[0]["ts"] > earlier[0]["ts"]


@needs_pcaps
def test_a_renumbered_capture_keeps_its_packets_gaps_and_timing():
    original = (SIPP_PCAPS / "dtmf_2833_pound.pcap").read_bytes()
    renumbered, next_seq = rfc2833_pcap("#", 65530, 12345)
    before, after = _rtp(original), _rtp(renumbered)
    assert len(before) == len(after) and [p["time"] for p in before] == [p["time"] for p in after]
    assert [(p["seq"] - before[0]["seq"]) & 0xFFFF for p in before] == \
        [(p["seq"] - 65530) & 0xFFFF for p in after]  # wraps past 65535
    assert next_seq == (after[-1]["seq"] + 1) & 0xFFFF and {p["ts"] for p in after} == {12345}


@pytest.mark.parametrize("bad", [dict(dtmf=("12a",)), dict(caller_number="55 12"), dict(caller_name='A "B"'),
                                 dict(dtmf_mode="inband")])
def test_bad_plans_are_refused(bad):
    values = dict(caller_number="5551234", caller_name="Caller", dialled="100") | bad
    with pytest.raises(ValueError):
        CallPlan(**values)


def _rtp(pcap: bytes) -> list[dict]:
    """The RTP telephone-event packets of an Ethernet/IPv4 capture (little-endian pcap)."""
    packets, offset = [], 24
    while offset < len(pcap):
        seconds, micros, captured = struct.unpack_from("<III", pcap, offset)
        ip = offset + 16 + 14
        udp = ip + (pcap[ip] & 0x0F) * 4
        rtp = udp + 8
        flags, seq, ts = struct.unpack_from(">BHI", pcap, rtp + 1)
        packets.append({"time": (seconds, micros), "udp_checksum": struct.unpack_from(">H", pcap, udp + 6)[0],
                        "pt": flags & 0x7F, "marker": bool(flags & 0x80), "seq": seq, "ts": ts,
                        "event": pcap[rtp + 12], "end": bool(pcap[rtp + 13] & 0x80)})
        offset += 16 + captured
    return packets


def test_the_media_ports_never_include_the_sip_port_that_is_not_bound_yet(monkeypatch):
    picks = iter([40001, 40005])  # the first block, 40000-40003, holds the SIP port
    monkeypatch.setattr(sipp, "free_udp_port", lambda: next(picks))
    assert sipp.free_media_port(40002) == 40004
