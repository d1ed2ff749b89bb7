"""Fixtures of the e2e tier: an AMI link to the session's lab, and sipp calls into it."""

import asyncio
import dataclasses
from types import SimpleNamespace

import pytest

from cti.callmodel.bus import EventBus
from cti.callmodel.model import CallModel
from cti.lab.phones import Phone, PhonePlan
from cti.lab.sipp import CallPlan, start_call
from cti.link import AmiLink
from crm_bridge.database import Database

WAIT = 30.0


class Recorder:
    """Every bus event, and a way to wait for one that matches."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list = []
        self._changed = asyncio.Event()
        bus.subscribe(self._record)

    def _record(self, event) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, predicate, timeout: float = WAIT):
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()


async def until(condition, timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


@pytest.fixture(autouse=True)
def lab_running(request):
    """A test that leaves the lab dead (a restart that failed) fails alone: the next test that
    uses the lab starts it again before anything connects to it."""
    if "lab" in request.fixturenames:
        lab = request.getfixturevalue("lab")
        if lab.live_pid() is None:
            lab.start()


@pytest.fixture
async def link(lab, lab_config):
    """An AMI link to the lab with short liveness and reconnect settings."""
    server = dataclasses.replace(lab_config.ami_servers()["lab"], ping_interval=0.5, ping_timeout=1.0,
                                 reconnect_min=0.1, reconnect_max=0.5, action_timeout=5.0)
    bus = EventBus()
    instance = AmiLink("lab", server, CallModel(), bus)
    instance.recorder = Recorder(bus)
    instance.start()
    await until(lambda: instance.resyncs >= 1)
    yield instance
    await instance.close()
    await bus.aclose()


@pytest.fixture
async def store(db_dsn):
    """The CRM store (a fresh database of the test's own), migrated and open."""
    database = Database(db_dsn)
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def calls(lab):
    """Start sipp calls into the lab; any still running at the end are stopped."""
    started = []

    def place(name: str = "José Müller", number: str = "5551234", hold_ms: int = 1000, dtmf: tuple = (),
              **timing):
        plan = CallPlan(number, name, "100", hold_ms=hold_ms, dtmf=dtmf, **timing)
        process = start_call(plan, lab.settings.sip_port)
        started.append(process)
        return process

    yield place
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.fixture
def phones(tmp_path):
    """Start lab phones (the user agents Asterisk dials) as their plan says; their logs stay in
    tmp_path, and they are stopped at the end."""
    started: list[Phone] = []

    def start(plan: PhonePlan = PhonePlan()) -> Phone:
        started.append(Phone(plan, workdir=tmp_path / f"phone{len(started)}").start())
        return started[-1]

    yield start
    for phone in started:
        phone.stop()


@pytest.fixture
def events(link) -> Recorder:
    """Every raw AMI event of the test (the link's bus carries call-model events only)."""
    return Recorder(SimpleNamespace(
        subscribe=lambda record: link.client.on_event(lambda _server, message: record(message))))
