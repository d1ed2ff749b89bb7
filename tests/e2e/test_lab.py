"""The lab is a real Asterisk: log into its AMI, place a sipp call, see the events.

This talks AMI with a few plain lines on purpose: it checks the lab itself, independently of
our AMI client (whose own e2e tests run on this same lab).
"""

import asyncio

from cti.lab.sipp import CallPlan, start_call


async def read_message(reader: asyncio.StreamReader) -> dict[str, str]:
    block = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
    headers = {}
    for line in block.decode("utf-8").split("\r\n"):
        name, _, value = line.partition(": ")
        if name:
            headers.setdefault(name, value)
    return headers


async def ami_session(lab):
    reader, writer = await asyncio.open_connection("127.0.0.1", lab.settings.ami_port)
    banner = await reader.readline()
    assert banner.startswith(b"Asterisk Call Manager/")
    writer.write(f"Action: Login\r\nUsername: cti\r\nSecret: {lab.settings.ami_secret}\r\n\r\n".encode())
    return reader, writer


async def test_ami_login_sees_fully_booted(lab):
    reader, writer = await ami_session(lab)
    try:
        assert (await read_message(reader))["Response"] == "Success"
        booted = await read_message(reader)
        assert booted["Event"] == "FullyBooted" and booted["Status"] == "Fully Booted"
        assert int(booted["Uptime"]) >= 0
    finally:
        writer.close()


async def test_sipp_call_name_arrives_intact_in_newchannel_and_hangup(lab):
    reader, writer = await ami_session(lab)
    try:
        call = start_call(CallPlan("5551234", "José Müller", "100", hold_ms=1000), lab.settings.sip_port)
        seen: dict[str, dict] = {}
        while "Hangup" not in seen:
            event = await read_message(reader)
            if event.get("CallerIDNum") == "5551234" and event.get("Event") in ("Newchannel", "Hangup"):
                seen[event["Event"]] = event
        assert seen["Newchannel"]["CallerIDName"] == "José Müller"
        assert seen["Newchannel"]["Exten"] == "100"
        assert seen["Hangup"]["CallerIDName"] == "José Müller"
        assert seen["Hangup"]["Uniqueid"] == seen["Newchannel"]["Uniqueid"]
        assert await asyncio.to_thread(call.wait, 60) == 0
    finally:
        writer.close()


def test_lab_status_names_the_real_asterisk(lab):
    status = lab.status()
    assert status.running and "Asterisk 22" in status.detail
