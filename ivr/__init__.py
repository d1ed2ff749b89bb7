"""The IVR engine: flow files in, a pure session state machine that turns inputs into actions.

    flow_set = load_flows("config/flows")                 # ivr.flow: format and checks
    session = IvrSession(flow_set, dnis, ani, now)       # ivr.engine
    actions = session.start()                            # ivr.actions
    actions = session.feed(Digits("1"), now)             # ivr.inputs
    session.result                                       # ivr.result: the attached data

``ivr.simulate`` runs scripted calls for flow authors and holds ``cti ivr``'s ``run_cli``.
"""

from ivr.engine import IvrSession
from ivr.flow import FlowError, FlowSet, NoFlowForDnis, load_flows, validate_flows
from ivr.result import IvrResult, Outcome, OutcomeKind

__all__ = ["FlowError", "FlowSet", "IvrResult", "IvrSession", "NoFlowForDnis", "Outcome", "OutcomeKind",
           "load_flows", "validate_flows"]
