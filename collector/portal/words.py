"""The portal's own words in the customer's language (en, nl, de, fr).

Line descriptions, meter names and plan names come from data and are shown as they are. A key
missing in a language falls back to English (a test checks that none is missing)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["LANGUAGES", "Words", "pick_language", "words"]

_EN: Final = {
    "kind_cumulative": "register",
    "kind_delta": "consumption messages",
    "kind_gauge": "instantaneous values",
    "code_refused": "This code is unknown, has expired or has already been used.",
    "dashboard": "Your consumption",
    "invoices": "Invoices",
    "sign_out": "Sign out",
    "sign_in": "Sign in",
    "skip": "Skip to content",
    "billing_period": "Billing period",
    "times_in": "Times in",
    "data_as_of": "Data as of",
    "no_readings_yet": "no readings yet",
    "this_period": "This period so far",
    "previous_period": "Previous period",
    "by_same_day": "by the same day",
    "estimated": "estimated",
    "all_measured": "all measured",
    "no_data": "no data",
    "not_yours": "not yours",
    "future": "not yet",
    "running_charge": "Running charge (draft)",
    "running_charge_none": "not available yet",
    "running_charge_none_detail": "shown once your supplier has drafted this period's invoice",
    "running_charge_detail": "estimate incl. tax, as drafted",
    "forecast": "Forecast for this period",
    "forecast_slot": "A forecast with its range will appear here once forecasting is enabled"
    " for your account. Until then the running charge above is the best figure we have.",
    "alerts": "Alerts",
    "alerts_slot": "Usage and bill alerts will be set here once alerts are enabled for your"
    " account.",
    "tou": "Breakdown by charge and time of use (draft)",
    "tou_none": "Shown once this period's invoice has been drafted.",
    "charge": "Charge",
    "time_of_use": "Time of use",
    "quantity": "Quantity",
    "amount": "Amount",
    "daily_this_period": "Daily consumption this period",
    "measured": "measured",
    "meters": "Your meters",
    "meter": "Meter",
    "no_meters": "No meters are linked to your account yet.",
    "latest_invoices": "Latest invoices",
    "no_invoices": "No invoices yet.",
    "invoice": "Invoice",
    "period": "Period",
    "total": "Total",
    "download": "Download",
    "credit_notes": "Credit notes",
    "resolution": "Resolution",
    "per_day": "Per day",
    "per_hour": "Per hour",
    "per_15m": "Per 15 minutes",
    "previous": "Previous",
    "next": "Next",
    "whole_month": "Whole month",
    "compare": "Compared with",
    "consumption": "Consumption",
    "of_which_estimated": "of which estimated",
    "when": "When",
    "click_day": "Choose a day to see it hour by hour.",
    "sign_in_intro": "Enter the sign-in code your supplier sent you, or open the sign-in link"
    " from the e-mail.",
    "code": "Sign-in code or access token",
    "continue": "Continue",
    "not_found": "There is nothing here.",
    "back": "Back to the dashboard",
    "estimate_note": "Estimated: where readings are missing (a meter offline, a gap in the"
    " data), the usage of those intervals is estimated from the meter's own history or by"
    " interpolation. Estimates are replaced by measured values when the missing readings"
    " arrive.",
    "change": "change",
}
_NL: Final = {
    "kind_cumulative": "telwerk",
    "kind_delta": "verbruiksberichten",
    "kind_gauge": "momentane waarden",
    "code_refused": "Deze code is onbekend, verlopen of al gebruikt.",
    "dashboard": "Uw verbruik",
    "invoices": "Facturen",
    "sign_out": "Afmelden",
    "sign_in": "Aanmelden",
    "skip": "Naar de inhoud",
    "billing_period": "Factuurperiode",
    "times_in": "Tijden in",
    "data_as_of": "Gegevens tot",
    "no_readings_yet": "nog geen metingen",
    "this_period": "Deze periode tot nu",
    "previous_period": "Vorige periode",
    "by_same_day": "tot dezelfde dag",
    "estimated": "geschat",
    "all_measured": "alles gemeten",
    "no_data": "geen gegevens",
    "not_yours": "niet van u",
    "future": "nog niet",
    "running_charge": "Lopend bedrag (concept)",
    "running_charge_none": "nog niet beschikbaar",
    "running_charge_none_detail": "zichtbaar zodra uw leverancier de factuur van deze periode"
    " heeft opgesteld",
    "running_charge_detail": "schatting incl. btw, opgesteld",
    "forecast": "Prognose voor deze periode",
    "forecast_slot": "Een prognose met bandbreedte verschijnt hier zodra prognoses voor uw"
    " account zijn ingeschakeld. Tot dan is het lopende bedrag hierboven het beste cijfer.",
    "alerts": "Meldingen",
    "alerts_slot": "Meldingen over verbruik en factuur stelt u hier in zodra meldingen voor uw"
    " account zijn ingeschakeld.",
    "tou": "Verdeling per tarief en tijdvak (concept)",
    "tou_none": "Zichtbaar zodra de factuur van deze periode is opgesteld.",
    "charge": "Tarief",
    "time_of_use": "Tijdvak",
    "quantity": "Hoeveelheid",
    "amount": "Bedrag",
    "daily_this_period": "Dagverbruik deze periode",
    "measured": "gemeten",
    "meters": "Uw meters",
    "meter": "Meter",
    "no_meters": "Er zijn nog geen meters aan uw account gekoppeld.",
    "latest_invoices": "Laatste facturen",
    "no_invoices": "Nog geen facturen.",
    "invoice": "Factuur",
    "period": "Periode",
    "total": "Totaal",
    "download": "Downloaden",
    "credit_notes": "Creditnota's",
    "resolution": "Resolutie",
    "per_day": "Per dag",
    "per_hour": "Per uur",
    "per_15m": "Per kwartier",
    "previous": "Vorige",
    "next": "Volgende",
    "whole_month": "Hele maand",
    "compare": "Vergeleken met",
    "consumption": "Verbruik",
    "of_which_estimated": "waarvan geschat",
    "when": "Wanneer",
    "click_day": "Kies een dag om die per uur te zien.",
    "sign_in_intro": "Vul de aanmeldcode in die uw leverancier u stuurde, of open de"
    " aanmeldlink uit de e-mail.",
    "code": "Aanmeldcode of toegangssleutel",
    "continue": "Doorgaan",
    "not_found": "Hier is niets.",
    "back": "Terug naar het overzicht",
    "estimate_note": "Geschat: waar metingen ontbreken (meter offline, een gat in de gegevens)"
    " schatten we het verbruik uit de eigen geschiedenis van de meter of door interpolatie."
    " Schattingen worden vervangen door gemeten waarden zodra de metingen binnenkomen.",
    "change": "verschil",
}
_DE: Final = {
    "kind_cumulative": "Zählwerk",
    "kind_delta": "Verbrauchsmeldungen",
    "kind_gauge": "Momentanwerte",
    "code_refused": "Dieser Code ist unbekannt, abgelaufen oder schon benutzt.",
    "dashboard": "Ihr Verbrauch",
    "invoices": "Rechnungen",
    "sign_out": "Abmelden",
    "sign_in": "Anmelden",
    "skip": "Zum Inhalt",
    "billing_period": "Abrechnungszeitraum",
    "times_in": "Zeiten in",
    "data_as_of": "Daten bis",
    "no_readings_yet": "noch keine Messwerte",
    "this_period": "Dieser Zeitraum bisher",
    "previous_period": "Vorheriger Zeitraum",
    "by_same_day": "bis zum selben Tag",
    "estimated": "geschätzt",
    "all_measured": "alles gemessen",
    "no_data": "keine Daten",
    "not_yours": "nicht Ihrer",
    "future": "noch nicht",
    "running_charge": "Laufender Betrag (Entwurf)",
    "running_charge_none": "noch nicht verfügbar",
    "running_charge_none_detail": "sichtbar, sobald Ihr Versorger die Rechnung dieses"
    " Zeitraums erstellt hat",
    "running_charge_detail": "Schätzung inkl. Steuer, erstellt",
    "forecast": "Prognose für diesen Zeitraum",
    "forecast_slot": "Eine Prognose mit Spanne erscheint hier, sobald Prognosen für Ihr Konto"
    " aktiviert sind. Bis dahin ist der laufende Betrag oben die beste Zahl.",
    "alerts": "Benachrichtigungen",
    "alerts_slot": "Verbrauchs- und Rechnungsbenachrichtigungen stellen Sie hier ein, sobald"
    " sie für Ihr Konto aktiviert sind.",
    "tou": "Aufteilung nach Tarif und Zeitzone (Entwurf)",
    "tou_none": "Sichtbar, sobald die Rechnung dieses Zeitraums erstellt ist.",
    "charge": "Tarif",
    "time_of_use": "Zeitfenster",
    "quantity": "Menge",
    "amount": "Betrag",
    "daily_this_period": "Tagesverbrauch in diesem Zeitraum",
    "measured": "gemessen",
    "meters": "Ihre Zähler",
    "meter": "Zähler",
    "no_meters": "Mit Ihrem Konto sind noch keine Zähler verbunden.",
    "latest_invoices": "Letzte Rechnungen",
    "no_invoices": "Noch keine Rechnungen.",
    "invoice": "Rechnung",
    "period": "Zeitraum",
    "total": "Gesamt",
    "download": "Herunterladen",
    "credit_notes": "Gutschriften",
    "resolution": "Auflösung",
    "per_day": "Pro Tag",
    "per_hour": "Pro Stunde",
    "per_15m": "Pro Viertelstunde",
    "previous": "Zurück",
    "next": "Weiter",
    "whole_month": "Ganzer Monat",
    "compare": "Verglichen mit",
    "consumption": "Verbrauch",
    "of_which_estimated": "davon geschätzt",
    "when": "Wann",
    "click_day": "Wählen Sie einen Tag, um ihn stundenweise zu sehen.",
    "sign_in_intro": "Geben Sie den Anmeldecode Ihres Versorgers ein oder öffnen Sie den"
    " Anmeldelink aus der E-Mail.",
    "code": "Anmeldecode oder Zugangsschlüssel",
    "continue": "Weiter",
    "not_found": "Hier ist nichts.",
    "back": "Zurück zur Übersicht",
    "estimate_note": "Geschätzt: Wo Messwerte fehlen (Zähler offline, Datenlücke), wird der"
    " Verbrauch aus dem Verlauf des Zählers oder durch Interpolation geschätzt. Schätzungen"
    " werden durch Messwerte ersetzt, sobald diese eintreffen.",
    "change": "Änderung",
}
_FR: Final = {
    "kind_cumulative": "index",
    "kind_delta": "messages de consommation",
    "kind_gauge": "valeurs instantanées",
    "code_refused": "Ce code est inconnu, a expiré ou a déjà été utilisé.",
    "dashboard": "Votre consommation",
    "invoices": "Factures",
    "sign_out": "Se déconnecter",
    "sign_in": "Se connecter",
    "skip": "Aller au contenu",
    "billing_period": "Période de facturation",
    "times_in": "Heures en",
    "data_as_of": "Données au",
    "no_readings_yet": "pas encore de relevés",
    "this_period": "Cette période à ce jour",
    "previous_period": "Période précédente",
    "by_same_day": "au même jour",
    "estimated": "estimé",
    "all_measured": "tout mesuré",
    "no_data": "pas de données",
    "not_yours": "pas à vous",
    "future": "pas encore",
    "running_charge": "Montant en cours (brouillon)",
    "running_charge_none": "pas encore disponible",
    "running_charge_none_detail": "affiché dès que votre fournisseur a établi la facture de"
    " cette période",
    "running_charge_detail": "estimation TTC, établie",
    "forecast": "Prévision pour cette période",
    "forecast_slot": "Une prévision avec sa fourchette apparaîtra ici dès que les prévisions"
    " seront activées pour votre compte. D'ici là, le montant en cours ci-dessus est le"
    " meilleur chiffre.",
    "alerts": "Alertes",
    "alerts_slot": "Les alertes de consommation et de facture se régleront ici dès qu'elles"
    " seront activées pour votre compte.",
    "tou": "Répartition par tarif et plage horaire (brouillon)",
    "tou_none": "Affichée dès que la facture de cette période est établie.",
    "charge": "Tarif",
    "time_of_use": "Plage horaire",
    "quantity": "Quantité",
    "amount": "Montant",
    "daily_this_period": "Consommation quotidienne de la période",
    "measured": "mesuré",
    "meters": "Vos compteurs",
    "meter": "Compteur",
    "no_meters": "Aucun compteur n'est encore lié à votre compte.",
    "latest_invoices": "Dernières factures",
    "no_invoices": "Pas encore de factures.",
    "invoice": "Facture",
    "period": "Période",
    "total": "Total",
    "download": "Télécharger",
    "credit_notes": "Avoirs",
    "resolution": "Résolution",
    "per_day": "Par jour",
    "per_hour": "Par heure",
    "per_15m": "Par quart d'heure",
    "previous": "Précédent",
    "next": "Suivant",
    "whole_month": "Mois entier",
    "compare": "Comparé à",
    "consumption": "Consommation",
    "of_which_estimated": "dont estimé",
    "when": "Quand",
    "click_day": "Choisissez un jour pour le voir heure par heure.",
    "sign_in_intro": "Saisissez le code de connexion envoyé par votre fournisseur, ou ouvrez"
    " le lien de connexion de l'e-mail.",
    "code": "Code de connexion ou clé d'accès",
    "continue": "Continuer",
    "not_found": "Il n'y a rien ici.",
    "back": "Retour au tableau de bord",
    "estimate_note": "Estimé : là où des relevés manquent (compteur hors ligne, trou dans les"
    " données), la consommation est estimée à partir de l'historique du compteur ou par"
    " interpolation. Les estimations sont remplacées par les mesures dès leur arrivée.",
    "change": "écart",
}

LANGUAGES: Final = MappingProxyType({"en": _EN, "nl": _NL, "de": _DE, "fr": _FR})

Words = Mapping[str, str]


def words(language: str) -> Words:
    """The portal's words in ``language`` (English for an unknown language or a missing key)."""
    chosen = LANGUAGES.get(language, _EN)
    return MappingProxyType({**_EN, **chosen})


def pick_language(accept_language: str | None) -> str:
    """The first of the browser's languages (``Accept-Language``, by weight) the portal speaks;
    English when none is (used before sign-in, when the customer is not known yet)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        ranked.append((-weight, i, tag.strip().lower()[:2]))
    for _, _, lang in sorted(ranked):
        if lang in LANGUAGES:
            return lang
    return "en"
