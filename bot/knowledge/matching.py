"""Find académies, staff categories and scrutins in free French text.

Names come from the knowledge base (official name, "autres noms", e-mail domain, acronyms), so
adding an alias in `kb/faq_fr.md` is enough for the assistant to understand it. Matching ignores
case, accents and punctuation, and tolerates one or two typos in long words.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

from bot.knowledge.kb_file import KnowledgeBase

EMAIL = re.compile(r"[\w.+-]*@?\b(ac-[a-z-]+)\.fr\b", re.IGNORECASE)
AC_PREFIX = re.compile(r"(?<![a-z0-9])ac $")
FUZZY_MIN_LENGTH = 6
FUZZY_CUTOFF = 0.84
# Job names sit closer to ordinary words (« insiste » / « instite », « contacte »): stricter.
FUZZY_CUTOFF_CATEGORY = 0.9


def fold(text: str) -> str:
    """Lower-case, accent-free, punctuation as spaces; same length as `text`.

    Keeping one output character per input character lets a match in the folded text be
    reported as a span of the original text.
    """
    out = []
    for char in text:
        base = unicodedata.normalize("NFKD", char)[0].lower()
        out.append(base if base.isalnum() and base.isascii() else " ")
    return "".join(out)


def fold_key(text: str) -> str:
    """`fold` with spaces collapsed: the key aliases are compared on."""
    return " ".join(fold(text).split())


@dataclass(frozen=True)
class Match:
    entity: str  # "academie", "categorie" or "scrutin"
    value: str  # canonical name from the knowledge base
    start: int
    end: int
    text: str


class EntityMatcher:
    """Matches the names of one knowledge base in messages."""

    def __init__(
        self,
        academies: dict[str, list[str]],
        categories: dict[str, list[str]],
        scrutins: dict[str, list[str]],
        domains: dict[str, str],
        departements: dict[tuple[str, str], str] | None = None,
        cities: dict[str, tuple[set[str], bool]] | None = None,
    ) -> None:
        self._domains = {d.lower(): name for d, name in domains.items()}
        self._departements = _departement_patterns(departements or {}, set(academies))
        self._cities = _city_patterns(cities or {}, academies)
        self._exact: list[tuple[str, str, str]] = []  # (folded alias, entity, value)
        for entity, names in (
            ("academie", academies),
            ("categorie", categories),
            ("scrutin", scrutins),
        ):
            for value, aliases in names.items():
                for alias in {value, *aliases}:
                    key = fold_key(alias)
                    if key:
                        self._exact.append((key, entity, value))
        # Longest first, so "directeur adjoint de segpa" wins over "segpa".
        self._exact.sort(key=lambda item: -len(item[0]))
        self._patterns = [(_pattern(k), e, v) for k, e, v in self._exact]
        self._fuzzy = {
            k: (e, v) for k, e, v in self._exact if " " not in k and len(k) >= FUZZY_MIN_LENGTH
        }

    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> EntityMatcher:
        return cls(
            academies={a.name: list(a.aliases) for a in kb.academies},
            categories={
                **{c.name: list(c.aliases) for c in kb.categories},
                **{name: list(aliases) for name, aliases in kb.category_groups.items()},
            },
            scrutins=scrutin_aliases({s.code: s.title for s in kb.scrutins}),
            domains={a.domain: a.name for a in kb.academies},
            departements={(d.number, d.name): a.name for a in kb.academies for d in a.departements},
            cities=city_academies(kb),
        )

    def find(self, text: str) -> list[Match]:
        """All non-overlapping names in `text`, in order of appearance."""
        taken = [False] * len(text)
        found: list[Match] = []

        folded = fold(text)

        def claim(start: int, end: int, entity: str, value: str) -> None:
            # "ac-lyon", "ac lyon": the académie prefix of a domain belongs to the name.
            if entity == "academie" and AC_PREFIX.search(folded[:start]):
                start = AC_PREFIX.search(folded[:start]).start()
            if not any(taken[start:end]):
                taken[start:end] = [True] * (end - start)
                found.append(Match(entity, value, start, end, text[start:end]))

        for match in EMAIL.finditer(text):
            name = self._domains.get(match.group(1).lower())
            if name:
                claim(match.start(), match.end(), "academie", name)
        for pattern, entity, value in self._patterns:
            for match in pattern.finditer(folded):
                claim(match.start(), match.end(), entity, value)
        for pattern, value in self._departements + self._cities:
            for match in pattern.finditer(folded):
                group = "name" if match.group("name") else "alone"
                if not isinstance(value, str):  # a city: its académie by its name
                    value = value[" ".join(match.group(group).split())]
                claim(match.start(group), match.end(group), "academie", value)
        for word in re.finditer(r"[a-z0-9]+", folded):
            if len(word.group()) < FUZZY_MIN_LENGTH or any(taken[word.start() : word.end()]):
                continue
            close = difflib.get_close_matches(word.group(), self._fuzzy, n=1, cutoff=FUZZY_CUTOFF)
            if close:
                entity, value = self._fuzzy[close[0]]
                ratio = difflib.SequenceMatcher(None, word.group(), close[0]).ratio()
                if entity != "categorie" or ratio >= FUZZY_CUTOFF_CATEGORY:
                    claim(word.start(), word.end(), entity, value)
        return sorted(found, key=lambda m: m.start)

    def first(self, text: str, entity: str) -> str | None:
        """Canonical value of the first `entity` named in `text`, if any."""
        return next((m.value for m in self.find(text) if m.entity == entity), None)


def city_academies(kb: KnowledgeBase) -> dict[str, tuple[set[str], bool]]:
    """Each city name of `kb/villes.md`: the académies it may designate, and whether the name
    is also an ordinary word (then only taken after « à », « de »...)."""
    by_number = {d.number: a.name for a in kb.academies for d in a.departements}
    cities: dict[str, tuple[set[str], bool]] = {}

    def add(name: str, academie: str, ordinary: bool) -> None:
        academies, was_ordinary = cities.get(name, (set(), False))
        cities[name] = (academies | {academie}, was_ordinary or ordinary)

    for city in kb.cities:
        add(city.name, by_number[city.departement], city.ordinary_word)
    for city in kb.cities:
        short = short_city_name(city.name)
        if short:
            # « prof à Brive » for Brive-la-Gaillarde: only after « à », « de »…, and left out
            # when it is shared (« Aix »: Aix-en-Provence or Aix-les-Bains).
            add(short, by_number[city.departement], True)
    return cities


# First words of compound names that do not name one town on their own (articles, « Saint »,
# ordinary nouns and verbs: Pointe-à-Pitre, Fort-de-France, Vire-Normandie).
NOT_A_SHORT_NAME = {
    "saint", "sainte", "le", "la", "les", "l", "chateau", "pont", "port", "mont", "baie",
    "basse", "fort", "pointe", "maisons", "vire", "joue", "grand", "grande", "petit", "petite",
}  # fmt: skip


def short_city_name(name: str) -> str | None:
    """The usual short name of a compound city name: its first word (« Brive » for
    Brive-la-Gaillarde, « Charleville » for Charleville-Mézières), when it says something."""
    first = re.split(r"[-' ]", name, maxsplit=1)[0]
    if first == name or len(first) < 4 or fold_key(first) in NOT_A_SHORT_NAME:
        return None
    return first


# Words after which a city that is also an ordinary word ("Sens", "Orange") is a place.
CITY_CONTEXT = (
    r"(?:a|au|de|d|sur|pres +de|pres +d|vers|cote +de|ville +de|secteur +de"
    r"|circonscription +de|circo +de|mairie +de)"
)


def _city_patterns(
    cities: dict[str, tuple[set[str], bool]], academies: dict[str, list[str]]
) -> list[tuple[re.Pattern[str], dict[str, str]]]:
    """Two patterns (group `name` or `alone`) for the cities of one académie, each name mapped to
    its académie: one for every name, one for names that are also ordinary words (only after
    « à », « de »...). One alternation each, longest names first: 450 cities cost one scan.

    A name shared by cities of several académies ("Saint-Denis": 93 or La Réunion) is left out:
    guessing would give the wrong webmail to half of those who type it.
    """
    known = {fold_key(alias) for name, aliases in academies.items() for alias in [name, *aliases]}
    plain: dict[str, str] = {}
    ordinary: dict[str, str] = {}
    for name, (owners, is_word) in cities.items():
        key = fold_key(name)
        if len(owners) == 1 and key and key not in known:
            (ordinary if is_word else plain)[key] = next(iter(owners))
    patterns = []
    for names, context in ((plain, ""), (ordinary, rf"{CITY_CONTEXT} +")):
        if not names:
            continue
        body = "|".join(
            " +".join(re.escape(w) for w in key.split()) for key in sorted(names, key=len)[::-1]
        )
        pattern = re.compile(
            rf"(?<![a-z0-9]){context}(?P<name>{body})(?![a-z0-9])|^ *(?P<alone>{body}) *$"
        )
        patterns.append((pattern, {**plain, **ordinary}))
    return patterns


# A département named by one word ("Cher", "Somme", "Vienne") or by its number ("93") is only
# taken as such after one of these words, or alone in the message: both are ordinary words.
DEPARTEMENT_CONTEXT = (
    r"(?:dans(?: +(?:le|la|l|les))?|en|du|de +la|de +l|des|au|aux"
    r"|departement(?: +(?:de|du|de +la|de +l|des))?|dept|dpt|dep|webmail|webmel|messagerie)"
)


# Words before a département number: « dans le 44 », « pour le 44 », « en 974 » (not a bare
# « le 29 »: a date as often as a place).
NUMBER_CONTEXT = (
    r"dans +le|du|departement|dept|dpt|dep|pour +le|sur +le|vers +le|en|au|academie +du"
    r"|secteur +du|circonscription +du"
)
# ...unless what follows makes it a date, a time, a quantity or a class level.
NOT_A_DEPARTEMENT = (
    r"(?:[0-9]|er\b|janv|fev|mars|avr|mai\b|juin|juil|aout|sept|oct|nov|dec|h\b|heures?\b|min"
    r"|ans\b|euros?\b|eleves|enfants|jours|fois|caracteres|mois|semaines|minutes|secondes"
    r"|personnes|collegues|classes|ecoles|sms|messages|mails|tentatives|%)"
)


def _departement_patterns(
    departements: dict[tuple[str, str], str], academies: set[str]
) -> list[tuple[re.Pattern[str], str]]:
    """Patterns (group `name` or `alone`) for département names and numbers, longest first."""
    academie_keys = {fold_key(a) for a in academies}
    patterns: list[tuple[int, re.Pattern[str], str]] = []
    for (number, name), academie in departements.items():
        key = fold_key(name)
        if key not in academie_keys:  # "Paris", "Guadeloupe" are already académie names
            patterns.append((len(key), _departement_name_pattern(key), academie))
        number_pattern = (
            rf"(?<![a-z0-9])(?:{NUMBER_CONTEXT}) +(?P<name>{number.lower()})"
            rf"(?![a-z0-9])(?! *{NOT_A_DEPARTEMENT})|^ *(?:le +)?(?P<alone>{number.lower()}) *$"
        )
        patterns.append((0, re.compile(number_pattern), academie))
    patterns.sort(key=lambda item: -item[0])
    return [(pattern, academie) for _, pattern, academie in patterns]


def _departement_name_pattern(key: str) -> re.Pattern[str]:
    words = key.split()
    if len(words) > 1:  # "seine saint denis": distinctive anywhere
        body = " +".join(re.escape(w) for w in words)
        return re.compile(rf"(?<![a-z0-9])(?P<name>{body})(?![a-z0-9])(?P<alone>)")
    return re.compile(
        rf"(?<![a-z0-9]){DEPARTEMENT_CONTEXT} +(?P<name>{re.escape(key)})(?![a-z0-9])"
        rf"|^ *(?P<alone>{re.escape(key)}) *$"
    )


def _pattern(key: str) -> re.Pattern[str]:
    """Whole words of `key`; words of 4+ letters also in feminine/plural ("détachée", "PsyENs")."""
    words = [re.escape(w) + ("e?s?" if len(w) >= 4 else "") for w in key.split()]
    return re.compile(r"(?<![a-z0-9])" + " +".join(words) + r"(?![a-z0-9])")


def scrutin_aliases(titles: dict[str, str]) -> dict[str, list[str]]:
    """Each scrutin code with its title and short forms ("CAPD" for "CAPD PE", "CCP AESH").

    A short form shared by several scrutins ("CAPN", "CCP") is kept as its own value: the
    caller lists every scrutin it designates (see `scrutins_named`).
    """
    aliases: dict[str, list[str]] = {}
    firsts: dict[str, list[str]] = {}
    for code, title in titles.items():
        aliases[code] = [re.sub(r"\s*\(.*?\)", "", title)]
        firsts.setdefault(code.split()[0], []).append(code)
        inner = re.search(r"\((.+)\)", code)
        if inner:
            aliases[code].append(f"{code.split()[0]} {inner.group(1)}")
            # « CCP non tit (AESH) » is also written « CCP non titulaires AESH »
            bare = re.sub(r"[()]", "", code)
            aliases[code] += [
                bare,
                bare.replace(" tit ", " titulaires "),
                bare.replace(" tit ", " titulaire "),
            ]
    for short, owners in firsts.items():
        if len(owners) == 1 and short != owners[0]:
            aliases[owners[0]].append(short)
        elif len(owners) > 1:
            aliases.setdefault(short, [])
    return aliases


def scrutins_named(value: str, codes: list[str]) -> list[str]:
    """The scrutin codes a (possibly short) name designates, in knowledge-base order."""
    if value in codes:
        return [value]
    key = fold_key(value)
    return [c for c in codes if fold_key(c).split()[0] == key or fold_key(c) == key]
