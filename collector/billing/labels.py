"""Invoice document labels per language (the customer's ``language``: en, nl, de, fr).

Only the document's own words are translated (titles, column heads, totals, the estimate note);
line descriptions come from the plan and the rating engine as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

_EN: Final = {
    "invoice": "Invoice",
    "draft": "DRAFT",
    "issuer": "Issuer",
    "period": "Service period",
    "to": "to",
    "exclusive": "(exclusive)",
    "description": "Description",
    "tier": "Tier",
    "tou": "TOU",
    "quantity": "Quantity",
    "unit_price": "Unit price",
    "amount": "Amount",
    "subtotal": "Subtotal",
    "tax": "Tax",
    "total": "Total",
    "estimate_note": (
        "* Includes estimated quantities (missing readings filled in); actual readings"
        " received later are settled on a following invoice."
    ),
}
_NL: Final = {
    "invoice": "Factuur",
    "draft": "CONCEPT",
    "issuer": "Afzender",
    "period": "Leveringsperiode",
    "to": "tot",
    "exclusive": "(exclusief)",
    "description": "Omschrijving",
    "tier": "Staffel",
    "tou": "Tijdvak",
    "quantity": "Hoeveelheid",
    "unit_price": "Prijs per eenheid",
    "amount": "Bedrag",
    "subtotal": "Subtotaal",
    "tax": "Btw",
    "total": "Totaal",
    "estimate_note": (
        "* Bevat geschatte hoeveelheden (ontbrekende meterstanden aangevuld); later ontvangen"
        " meterstanden worden op een volgende factuur verrekend."
    ),
}
_DE: Final = {
    "invoice": "Rechnung",
    "draft": "ENTWURF",
    "issuer": "Rechnungssteller",
    "period": "Leistungszeitraum",
    "to": "bis",
    "exclusive": "(ausschließlich)",
    "description": "Beschreibung",
    "tier": "Stufe",
    "tou": "Zeitfenster",
    "quantity": "Menge",
    "unit_price": "Einzelpreis",
    "amount": "Betrag",
    "subtotal": "Zwischensumme",
    "tax": "MwSt.",
    "total": "Gesamt",
    "estimate_note": (
        "* Enthält geschätzte Mengen (fehlende Zählerstände ergänzt); später eingehende"
        " Zählerstände werden mit einer folgenden Rechnung verrechnet."
    ),
}
_FR: Final = {
    "invoice": "Facture",
    "draft": "BROUILLON",
    "issuer": "Émetteur",
    "period": "Période de service",
    "to": "au",
    "exclusive": "(exclu)",
    "description": "Description",
    "tier": "Palier",
    "tou": "Plage",
    "quantity": "Quantité",
    "unit_price": "Prix unitaire",
    "amount": "Montant",
    "subtotal": "Sous-total",
    "tax": "TVA",
    "total": "Total",
    "estimate_note": (
        "* Comprend des quantités estimées (relevés manquants complétés) ; les relevés reçus"
        " plus tard sont régularisés sur une facture suivante."
    ),
}
_TABLE: Final = {"en": _EN, "nl": _NL, "de": _DE, "fr": _FR}


def labels_for(language: object) -> Mapping[str, str]:
    """The labels of ``language``; English for an unknown or missing language."""
    table = _TABLE.get(str(language), _EN) if language else _EN
    return MappingProxyType(table)
