"""Columns that likely hold personal data, told by their names: flagged to the owners on
upload and schema refresh with a suggested classification, never applied for them (a
column called `name` may well be a product's name; the owner decides).

Names are split into words (`customerEmail`, `customer_email`, `Customer-E-mail` all give
`customer`, `email`), and a rule matches whole words, so `domain_name` or `filename` are
not people's names and `emailed_at` is not an e-mail address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from products.choices import Classification

# Least to most sensitive: a suggestion is shown only above the column's classification.
CLASSIFICATION_RANK = {
    Classification.PUBLIC: 0,
    Classification.INTERNAL: 1,
    Classification.CONFIDENTIAL: 2,
    Classification.RESTRICTED: 3,
}


@dataclass(frozen=True)
class PersonalDataHint:
    what: str  # in words: "e-mail addresses"
    suggested: Classification

    @property
    def suggested_label(self) -> str:
        return self.suggested.label


# (what, suggested classification, word sequences that say it), most specific first.
_RULES: tuple[tuple[str, Classification, tuple[tuple[str, ...], ...]], ...] = (
    (
        "bank account numbers",
        Classification.RESTRICTED,
        (("iban",), ("bic",), ("account", "number"), ("bank", "account")),
    ),
    (
        "card numbers",
        Classification.RESTRICTED,
        (("card", "number"), ("credit", "card"), ("pan",), ("cvv",), ("cvc",)),
    ),
    (
        "national identity numbers",
        Classification.RESTRICTED,
        (("ssn",), ("social", "security"), ("national", "id"), ("passport",), ("nin",)),
    ),
    ("health data", Classification.RESTRICTED, (("diagnosis",), ("medical",), ("health",))),
    ("e-mail addresses", Classification.CONFIDENTIAL, (("email",), ("e", "mail"))),
    (
        "phone numbers",
        Classification.CONFIDENTIAL,
        (("phone",), ("telephone",), ("mobile",), ("msisdn",), ("tel",), ("fax",)),
    ),
    (
        "people's names",
        Classification.CONFIDENTIAL,
        (
            ("first", "name"),
            ("last", "name"),
            ("full", "name"),
            ("given", "name"),
            ("family", "name"),
            ("surname",),
            ("firstname",),
            ("lastname",),
            ("fullname",),
            ("customer", "name"),
            ("contact", "name"),
            ("person", "name"),
            ("user", "name"),
            ("employee", "name"),
        ),
    ),
    (
        "postal addresses",
        Classification.CONFIDENTIAL,
        (
            ("address",),
            ("street",),
            ("postcode",),
            ("postal", "code"),
            ("zip",),
            ("zipcode",),
            ("house", "number"),
        ),
    ),
    (
        "dates of birth",
        Classification.CONFIDENTIAL,
        (("birth",), ("birthday",), ("dob",), ("birthdate",)),
    ),
    ("IP addresses", Classification.CONFIDENTIAL, (("ip",), ("ipv4",), ("ipv6",))),
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def _words(name: str) -> list[str]:
    return [word for word in _NOT_WORD.split(_CAMEL.sub(" ", name).lower()) if word]


def _contains(words: list[str], sequence: tuple[str, ...]) -> bool:
    size = len(sequence)
    return any(tuple(words[i : i + size]) == sequence for i in range(len(words) - size + 1))


def personal_data_hint(name: str) -> PersonalDataHint | None:
    """What personal data a column of this name likely holds, or None."""
    words = _words(name or "")
    if "address" in words and "ip" in words:
        return PersonalDataHint("IP addresses", Classification.CONFIDENTIAL)
    if "address" in words and ("email" in words or "mail" in words):
        return PersonalDataHint("e-mail addresses", Classification.CONFIDENTIAL)
    for what, suggested, sequences in _RULES:
        if any(_contains(words, sequence) for sequence in sequences):
            return PersonalDataHint(what, suggested)
    return None


def personal_data_suggestion(name: str, classification: str) -> PersonalDataHint | None:
    """The hint for a column when it suggests more protection than it has, else None."""
    hint = personal_data_hint(name)
    if hint is None:
        return None
    current = CLASSIFICATION_RANK.get(classification, 0)
    return hint if CLASSIFICATION_RANK[hint.suggested] > current else None


def personal_data_message(columns) -> str:
    """For the owner after an upload or a schema refresh: the columns that look like
    personal data and are classified below the suggestion, in one sentence; "" if none."""
    flagged = [c.name for c in columns if personal_data_suggestion(c.name, c.classification)]
    if not flagged:
        return ""
    shown = ", ".join(flagged[:5]) + (f" and {len(flagged) - 5} more" if len(flagged) > 5 else "")
    if len(flagged) == 1:
        return (
            f"The column {shown} looks like personal data: review its classification "
            "(a suggestion is shown beside it in the schema)."
        )
    return (
        f"{len(flagged)} columns look like personal data ({shown}): review their "
        "classification (a suggestion is shown beside each in the schema)."
    )
