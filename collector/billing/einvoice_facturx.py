"""Factur-X / ZUGFeRD 2: the invoice PDF turned into a PDF/A-3 with the CII XML embedded as
``factur-x.xml`` (``factur-x`` package: XMP metadata, output intent, attachment relationship).

The visual PDF is ``documents.invoice_pdf`` with its fonts embedded (PDF/A needs them); the
XML is checked against the Factur-X EN 16931 schema before it is embedded. Errors of the
library are translated here, once.
"""

from __future__ import annotations

from facturx import generate_from_binary

from collector.billing.einvoice_cii import cii_xml
from collector.billing.legal import LegalDocument
from collector.errors import Conflict


class EInvoiceError(Conflict):
    """An e-invoice could not be built from this document (its XML failed the schema, the PDF
    conversion failed, or no embeddable font is installed)."""


def facturx_pdf(doc: LegalDocument, visual_pdf: bytes) -> bytes:
    """``visual_pdf`` (the human-readable invoice) as PDF/A-3 with the CII XML of ``doc``."""
    xml = cii_xml(doc)
    title = f"{doc.number}"
    try:
        out = generate_from_binary(
            visual_pdf,
            xml,
            flavor="factur-x",
            level="en16931",
            check_xsd=True,
            pdf_metadata={
                "author": doc.seller.name if doc.seller else "",
                "keywords": "Factur-X, invoice",
                "title": title,
                "subject": f"{title} {doc.period}",
            },
            lang=doc.language,
        )
    except Exception as exc:  # the library raises bare Exception for schema failures
        raise EInvoiceError(f"Factur-X of {title} could not be built: {exc}") from exc
    return bytes(out)
