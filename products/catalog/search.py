"""The rules of catalog search, written once in Python so that PostgreSQL and SQLite rank alike.

The database only narrows the catalog to candidates (products.catalog.selectors: full-text
and pg_trgm on PostgreSQL, LIKE on SQLite); these rules decide which candidates match,
why, and in what order:

- Any word may match: a product matching more of the words ranks first.
- Then the lifecycle: published, then draft, then deprecated, then retired.
- Then how well and where: a whole word (or its plural) beats the start of a word, which
  beats a close spelling (a typo corrected against the catalog's own words); a match in
  the name beats tags, summary and domain, which beat description and use case, which
  beat column names and descriptions.
- Then the name, A to Z.

A query word no candidate contains is corrected to the closest word of the names, tags
and column names the user may see, by pg_trgm's trigram similarity (computed here the way
pg_trgm computes it), and offered as "did you mean".
"""

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from products.choices import LifecycleStatus

MAX_WORDS = 8  # words of a query searched; the rest are ignored
MAX_CORRECTIONS = 3  # unknown words corrected per query
# Trigram similarity a catalog word needs to count as a correction of a query word
# ("ordrs" -> "orders" 0.44, "revnue" -> "revenue" 0.5, "chrn" -> "churn" 0.38).
CLOSE_ENOUGH = 0.35

# Words too common to search for (PostgreSQL's English stop words drop the same words
# from its full-text queries).
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is
    it its itself just me more most my myself no nor not now of off on once only or other our
    ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we
    were what when where which while who whom why will with you your yours yourself
    yourselves""".split()
)

_WORD = re.compile(r"[^\W_]+")


class Quality(IntEnum):
    """How a word matched a field, best last."""

    CLOSE = 1  # a close spelling of the word (a typo corrected)
    PARTIAL = 2  # the start of a word of the field
    FULL = 3  # a whole word of the field, or its plural


class Field:
    """Where a word matched, with its weight in the ranking."""

    NAME = "name"
    TAG = "tag"
    SUMMARY = "summary"
    DOMAIN = "domain"
    DESCRIPTION = "description"
    USE_CASE = "use case"
    COLUMN = "column"
    COLUMN_DESCRIPTION = "column description"


FIELD_WEIGHTS = {
    Field.NAME: 4,
    Field.TAG: 3,
    Field.SUMMARY: 3,
    Field.DOMAIN: 3,
    Field.DESCRIPTION: 2,
    Field.USE_CASE: 2,
    Field.COLUMN: 1,
    Field.COLUMN_DESCRIPTION: 1,
}

LIFECYCLE_TIERS = {
    LifecycleStatus.PUBLISHED: 0,
    LifecycleStatus.DRAFT: 1,
    LifecycleStatus.DEPRECATED: 2,
    LifecycleStatus.RETIRED: 3,
}


def text_words(text: str) -> list[str]:
    """The words of a text, lower case: letters and digits, split at anything else
    (`churn_score` is "churn" and "score")."""
    return _WORD.findall(text.casefold())


def query_words(q: str) -> list[str]:
    """The words searched for: no stop words, no single letters, no repeats, at most
    MAX_WORDS."""
    words: list[str] = []
    for word in text_words(q):
        if len(word) > 1 and word not in STOP_WORDS and word not in words:
            words.append(word)
    return words[:MAX_WORDS]


def singular(word: str) -> str:
    """The word without a plural ending: "orders" and "order" match each other."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def contained_fragment(word: str) -> str:
    """A part of `word` that every text it matches contains (for a LIKE that finds at
    least those texts): "orders" matches "order", "category" matches "categories", so
    "order" and "categor"."""
    fragment = singular(word)
    if fragment.endswith("y"):
        fragment = fragment[:-1]
    return os.path.commonprefix([word, fragment])


def trigrams(word: str) -> set[str]:
    """pg_trgm's trigrams of one word: two spaces before it, one after."""
    padded = f"  {word} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def similarity(a: str, b: str) -> float:
    """pg_trgm's similarity() of two words: shared trigrams over all trigrams."""
    ta, tb = trigrams(a), trigrams(b)
    return len(ta & tb) / len(ta | tb) if ta or tb else 0.0


def closest_word(word: str, vocabulary: Iterable[str]) -> str | None:
    """The catalog word closest to `word` by trigram similarity (at least CLOSE_ENOUGH),
    or None; ties go to the alphabetically first, so the choice is stable."""
    best: tuple[float, str] | None = None
    for candidate in set(vocabulary):
        if len(candidate) < 3 or candidate == word or candidate in STOP_WORDS:
            continue
        score = similarity(word, candidate)
        if score >= CLOSE_ENOUGH and (
            best is None or score > best[0] or (score == best[0] and candidate < best[1])
        ):
            best = (score, candidate)
    return best[1] if best else None


@dataclass(frozen=True)
class FieldMatch:
    """One query word found in one field: "column churn_score", "name (as orders)"."""

    field: str
    word: str  # the query word as typed
    quality: Quality
    detail: str = ""  # the column or tag it matched in
    corrected_to: str = ""  # the catalog word it was read as, for CLOSE

    @property
    def weight(self) -> int:
        return int(self.quality) * 10 + FIELD_WEIGHTS[self.field]


@dataclass
class Candidate:
    """A product's searchable text, as read from the database."""

    pk: int
    name: str
    status: str
    summary: str = ""
    description: str = ""
    use_case: str = ""
    domain: str = ""
    tags: list[str] = field(default_factory=list)
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, description)

    def fields(self) -> Iterable[tuple[str, str, str]]:
        """(field, detail, text) of every searchable field; the detail names the tag or column."""
        yield Field.NAME, "", self.name
        for tag in self.tags:
            yield Field.TAG, tag, tag
        yield Field.SUMMARY, "", self.summary
        yield Field.DOMAIN, "", self.domain
        yield Field.DESCRIPTION, "", self.description
        yield Field.USE_CASE, "", self.use_case
        for name, description in self.columns:
            yield Field.COLUMN, name, name
            yield Field.COLUMN_DESCRIPTION, name, description


@dataclass(frozen=True)
class RankedProduct:
    pk: int
    words_matched: int
    tier: int
    score: int
    name: str
    matches: tuple[FieldMatch, ...]

    def sort_key(self) -> tuple:
        # At equal matches, the shorter name first: "orders" finds "Orders" before "Live
        # orders" (the words typed are more of it).
        return (
            -self.words_matched,
            self.tier,
            -self.score,
            len(self.name),
            self.name.casefold(),
            self.pk,
        )


@dataclass(frozen=True)
class _Term:
    """A query word prepared once per search: its fragment, singular and correction."""

    word: str
    fragment: str
    singular: str
    correction: str = ""
    correction_fragment: str = ""
    correction_singular: str = ""

    @classmethod
    def of(cls, word: str, correction: str) -> "_Term":
        if not correction:
            return cls(word, contained_fragment(word), singular(word))
        return cls(
            word,
            contained_fragment(word),
            singular(word),
            correction,
            contained_fragment(correction),
            singular(correction),
        )


def _word_match(term: _Term, field_name: str, detail: str, text: str) -> FieldMatch | None:
    """How the term's word (or its correction) matches the lower-case `text`, if at all.
    Only the words of the text starting with the word's fragment can match, and the text
    must contain it: most fields are ruled out without splitting them into words."""
    if term.fragment in text:
        starting = [w for w in _WORD.findall(text) if w.startswith(term.fragment)]
        if any(singular(w) == term.singular for w in starting):
            return FieldMatch(field_name, term.word, Quality.FULL, detail)
        if any(w.startswith(term.word) for w in starting):
            return FieldMatch(field_name, term.word, Quality.PARTIAL, detail)
    if term.correction and term.correction_fragment in text:
        fragment = term.correction_fragment
        starting = [w for w in _WORD.findall(text) if w.startswith(fragment)]
        if any(singular(w) == term.correction_singular for w in starting):
            return FieldMatch(
                field_name, term.word, Quality.CLOSE, detail, corrected_to=term.correction
            )
    return None


def _rank_candidate(candidate: Candidate, terms: list[_Term]) -> RankedProduct | None:
    best: dict[str, FieldMatch] = {}
    for field_name, detail, text in candidate.fields():
        if not text:
            continue
        text = text.casefold()
        for term in terms:
            match = _word_match(term, field_name, detail, text)
            if match and (term.word not in best or match.weight > best[term.word].weight):
                best[term.word] = match
    if not best:
        return None
    matches = tuple(best[term.word] for term in terms if term.word in best)
    return RankedProduct(
        pk=candidate.pk,
        words_matched=len(matches),
        tier=LIFECYCLE_TIERS.get(candidate.status, len(LIFECYCLE_TIERS)),
        score=sum(match.weight for match in matches),
        name=candidate.name,
        matches=matches,
    )


def rank_candidate(
    candidate: Candidate, words: list[str], corrections: dict[str, str]
) -> RankedProduct | None:
    """The candidate's place in the ranking, with the best match of each query word; None
    when no word matches it."""
    return _rank_candidate(candidate, [_Term.of(w, corrections.get(w, "")) for w in words])


def rank(
    candidates: Iterable[Candidate], words: list[str], corrections: dict[str, str]
) -> list[RankedProduct]:
    """The candidates that match, best first."""
    terms = [_Term.of(word, corrections.get(word, "")) for word in words]
    ranked = [_rank_candidate(candidate, terms) for candidate in candidates]
    return sorted((r for r in ranked if r is not None), key=RankedProduct.sort_key)


def words_found(ranked: Iterable[RankedProduct]) -> set[str]:
    """Query words some product matched as typed (whole or start of a word)."""
    return {m.word for r in ranked for m in r.matches if m.quality > Quality.CLOSE}


def suggestion(q: str, corrections: dict[str, str]) -> str:
    """The search text with each corrected word replaced: "did you mean …"."""
    if not corrections:
        return ""
    return " ".join(corrections.get(word, word) for word in text_words(q))
