"""`cti lab ...` subcommands."""

from __future__ import annotations

import argparse
import signal
import tempfile
from pathlib import Path

from cti.config import Config
from cti.lab import Lab
from cti.lab.phones import Phone, PhonePlan
from cti.lab.sipp import CallPlan, run_call


def setup(config: Config, _args: argparse.Namespace) -> int:
    lab = Lab.from_config(config)
    lab.setup()
    print(f"lab root ready: {lab.root}")
    return 0


def start(config: Config, _args: argparse.Namespace) -> int:
    lab = Lab.from_config(config)
    lab.start()
    print(f"lab running: SIP 127.0.0.1:{config.lab.sip_port}, AMI 127.0.0.1:{config.lab.ami_port} "
          f"(user cti), dialplan reaches FastAGI on 127.0.0.1:{config.agi.port}")
    return 0


def stop(config: Config, _args: argparse.Namespace) -> int:
    Lab.from_config(config).stop()
    print("lab stopped")
    return 0


def status(config: Config, _args: argparse.Namespace) -> int:
    state = Lab.from_config(config).status()
    print(f"running (pid {state.pid}): {state.detail}" if state.running
          else f"not running; root {'ready' if state.root_ready else 'not set up'}")
    return 0 if state.running else 3


def call(config: Config, args: argparse.Namespace) -> int:
    try:
        plan = CallPlan(args.caller, args.name, args.dialled,
                        dtmf=tuple(group for group in args.dtmf.split(",") if group),
                        hold_ms=int(args.hold * 1000), dtmf_mode=args.dtmf_mode)
    except ValueError as error:
        print(f"cti lab call: {error}")
        return 2
    succeeded, complaint = run_call(plan, config.lab.sip_port)
    print(f"call from {plan.caller_name} <{plan.caller_number}> to {plan.dialled}: "
          + ("completed" if succeeded else f"failed\n{complaint}"))
    return 0 if succeeded else 1


def phone(_config: Config, args: argparse.Namespace) -> int:
    try:
        plan = PhonePlan(answer_after_ms=None if args.no_answer else args.answer_after_ms, busy=args.busy)
    except ValueError as error:
        print(f"cti lab phone: {error}")
        return 2
    # SIGTERM stops it as Ctrl-C does: through the with block, which stops sipp too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # Our own work dir, so the message log outlives the phone.
    with Phone(plan, args.port, Path(tempfile.mkdtemp(prefix="cti-phone-"))) as running:
        print(f"phone on UDP {running.port}, dial {running.dial_string('agent1')} (any user part); "
              f"SIP messages in {running.messages_log}; Ctrl-C stops it", flush=True)
        code = running.process.wait()
    print(f"sipp exited with code {code}; see {running.workdir}")
    return 1
