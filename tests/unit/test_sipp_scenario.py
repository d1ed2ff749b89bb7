import xml.etree.ElementTree as ElementTree

import pytest

from cti.lab.sipp import CallPlan, ScenarioBuilder


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


@pytest.mark.parametrize("bad", [dict(dtmf=("12a",)), dict(caller_number="55 12"), dict(caller_name='A "B"')])
def test_bad_plans_are_refused(bad):
    values = dict(caller_number="5551234", caller_name="Caller", dialled="100") | bad
    with pytest.raises(ValueError):
        CallPlan(**values)
