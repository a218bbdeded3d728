"""Read a voter's situation in a long message: the académie of now, the staff category a job
description designates, and whether the writer asks for someone else.

Pure functions over the text and the names `EntityMatcher` found in it; the words they look
for are French grammar, the categories' job descriptions come from `kb/faq_fr.md`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.knowledge.kb_file import OUTSIDE_TABLE, CategoryCues, KnowledgeBase
from bot.knowledge.matching import Match, fold

GAP = "…"
# How the NLU marks what it read (entity roles and values the actions look for):
FORMER = "avant"  # role of an académie named as a past one (« j'étais à Nantes »)
SITUATION = "situation"  # entity whose values are the ones below
ABOUT_OTHERS = "tiers"  # the writer asks for a colleague or a team
COMPARISON = "comparaison"  # the writer compares categories
ASKS_WHO = "qui"  # the writer asks who votes in a scrutin
# What the question asks, read from its words (`Situation.asks`).
ASKS_BALLOTS = "scrutins"  # which ballots someone votes in
ASKS_WEBMAIL = "messagerie"  # the professional mailbox
CORRECTING = "correction"  # something is wrong and should be corrected (a contest)
EARLIER_ELECTIONS = "elections_passees"  # the question is about earlier elections (2014…)
ASKS_NEEDS = "besoin"  # what the writer will need (« de quoi j'aurai besoin pour voter ? »)
OFF_TOPIC = "hors_sujet"  # a near-domain question the knowledge base does not answer
# Words of the base's own topics: a question that names them is not off topic whatever else it
# says (« mon mot de passe ENT et mon mot de passe électeur, c'est le même ? »).
ON_TOPIC = re.compile(
    r"(?<![a-z])(?:mot +de +passe|mots +de +passe|mdp|identifiant|numen|espace +electeur"
    r"|espace +de +vote|messagerie|webmail|webmel|scrutin|scrutins|notice)(?![a-z])"
)
QUESTION_KINDS = {
    ASKS_BALLOTS: re.compile(
        r"(?<![a-z])(?:(?:je|il|elle|on|ils|elles|j) +(?:vote|votent|voterai|voterait)"
        r" +(?:pour|a|au|aux) +(?:quoi|koi|quels?|quelles?)|votent +ils|vote +t +(?:il|elle|on)"
        r"|(?:pour|a) +(?:quoi|koi) +(?:je|il|elle|on|ils|elles) +vot[a-z]*"
        r"|(?:mes|ses|leurs|nos|vos|quels|quelles) +(?:scrutins|votes|elections)"
        r"|quels? +scrutins?|a +quels? +scrutins?|combien +de +(?:scrutins|votes)"
        r"|(?:electeur|electrice|electeurs|electrices) +(?:de|a|au|aux) +(?:quoi|koi|quels?)"
        r"|memes? +scrutins|meme +nombre|lesquels +(?:me|le|la|les|nous|vous) +concern[a-z]*"
        r"|(?:la +liste|l +ensemble|le +nombre) +(?:de +mes|des|de +ses|de +leurs) +scrutins"
        r"|scrutins +(?:auxquels|ou|qui +(?:me|le|la|les|nous|vous) +concern[a-z]*)"
        r"|combien +de +fois +(?:je|j|il|elle|on|ils|elles) +vot[a-z]*"
        r"|(?:je|il|elle|on) +vote +(?:a|au|aux) +(?:la +|le +|l +)?(?:ctm|cta|cap[a-z]*|cc[a-z]*)"
        r"|droit +de +voter|scrutins +pour +(?:moi|elle|lui|eux|nous))(?![a-z])"
    ),
    ASKS_WHO: re.compile(
        r"(?<![a-z])(?:qui +(?:vote|votent|est +electeur|sont +les +electeurs|est +concerne"
        r"|sont +concernes|peut +voter)|concerne +qui|concernent +qui|pour +qui|qui +est +concerne"
        r"|(?:les +)?electeurs +(?:de +la|du|de +l|des)|electeurs *$|a +part +les"
        r"|seulement +(?:pour +)?(?:les|ceux|celles)|quels +personnels|qui +y +vote|tous +les"
        r"|^ *electeurs?|electeurs? +(?:de +la +|du +|des +|de +l +|a +la +|au +)?"
        r"(?:capn|capd|capa|cta|ctm|ccp|ccpa|ccsa))(?![a-z])"
    ),
    CORRECTING: re.compile(
        r"(?<![a-z])(?:faux|fausse|fausses|erreur|errone|erronee|rectifi[a-z]*|corrig[a-z]*"
        r"|contest[a-z]*|modifi[a-z]*|mauvais|mauvaise|pas +(?:le|la|les) +bons?|trompe"
        r"|se +sont +trompes|au +lieu +de)(?![a-z])"
    ),
    EARLIER_ELECTIONS: re.compile(
        r"(?<![a-z])(?:2014|2011|2010|dernieres +elections|elections +precedentes|precedentes"
        r" +elections|la +derniere +fois|il +y +a +(?:4|quatre) +ans|derniere +election"
        r"|aux +dernieres|des +dernieres)(?![a-z])"
    ),
    ASKS_NEEDS: re.compile(
        r"(?<![a-z])(?:besoin|faut +il|il +(?:me +)?faut|dois +je +avoir|que +dois +je +(?:avoir"
        r"|preparer)|quoi +d +autre|preparer|sous +la +main|quelles? +infos?|quels? +codes?"
        r"|qu +est +ce +qu +on +(?:me +)?demander[a-z]*|on +(?:me +)?demandera|demande +quoi"
        r"|qu +est +ce +qu +il +faut|de +quoi)(?![a-z])"
    ),
    ASKS_WEBMAIL: re.compile(
        r"(?<![a-z])(?:messagerie|messageries|webmail|webmel|mails? +(?:pro|professionnels?"
        r"|academiques?)|boite +(?:mail|pro|academique|aux +lettres +pro)|courriel +pro"
        r"|adresse +(?:du|de +la) +(?:messagerie|boite|webmail))(?![a-z])"
    ),
}
# Words that place a place or a job in the past (« j'étais à Nantes », « avant, à Lille »).
PAST = re.compile(
    r"(?<![a-z])(?:etais|etait|etions|etiez|etaient|ete|avant|auparavant|anciennement|ancien"
    r"|ancienne|precedemment|precedente?|jusqu +en|l +an +dernier|l +annee +derniere"
    r"|jusqu +(?:a|au) +(?:l +an|l +annee|la +rentree|cet +ete|hier|present|maintenant|[0-9]"
    r"|janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre)"
    r"|annee +derniere|dernierement|quitte|venais|venant|viens +de|vient +de|mute +de|mutee +de"
    r"|ex|autrefois|travaillais|enseignais|bossais|passe +par)(?![a-z])"
)
# Words that say the place is not (or no longer) where the writer works: « je ne suis plus dans
# le Nord », « j'habite à Strasbourg ». They outweigh the words of the present.
NOT_THE_WORKPLACE = re.compile(
    r"(?<![a-z])(?:ne +(?:suis|travaille|bosse|enseigne|depends?) +plus|n +y +(?:suis|travaille)"
    r" +plus|plus +(?:dans|a|en|sur) +(?:le|la|l)?|habite|habitons|habitais|j +habite|vis +a"
    r"|vis +en|vis +dans|domicile|reside|residence|chez +moi|originaire|natif|native)(?![a-z])"
)
# Words that place it now (« maintenant à Rennes », « mutée à Rennes »).
PRESENT = re.compile(
    r"(?<![a-z])(?:maintenant|desormais|actuellement|aujourd +hui|depuis|cette +annee"
    r"|a +present|mute|mutee|mutes|mutees|mutation|nomme|nommee|arrive|arrivee|affecte|affectee"
    r"|ecole +de|college +de|lycee +de|circonscription +de|poste +a"
    r"|suis|sommes|travaille|enseigne|bosse|exerce|en +poste)(?![a-z])"
)
# « c'est pour moi aussi ? », « est-ce que je vote à la CAPA ? »: the writer's own yes or no.
SELF_CHECK = re.compile(r"(?<![a-z])(?:pour +moi|moi +aussi|je +vote|je +suis +concerne)(?![a-z])")
# Clause boundaries: a place belongs to the clause it is written in.
CLAUSE = re.compile(r"[.;:!?()\n,]|\b(?:mais|et|puis|alors|donc|avant|maintenant)\b", re.I)
# The writer asks for someone else: « mes AESH », « une de mes collègues », « pour elle ».
OTHERS = re.compile(
    r"(?<![a-z])(?:mes|mon|ma|nos|notre|votre|vos|leur|leurs|une +de +mes|un +de +mes"
    r"|l +une +de +mes|l +un +de +mes|plusieurs|certaines|certains|les)"
    r" +(?:[a-z]+ +){0,2}?(?:collegue|collegues|aesh|aed|avs|stagiaire|stagiaires|adjoint"
    r"|adjointe|adjoints|equipe|personnels|personnel|psy|psys|psychologue|psychologues"
    r"|contractuel|contractuels|contractuelle|contractuelles|enseignants|enseignantes|pe"
    r"|directeurs|directrices|agents|salaries|accompagnants|accompagnantes)(?![a-z])"
    r"|(?<![a-z])pour +(?:elle|lui|eux|elles|une +collegue|un +collegue|ma +collegue"
    r"|mon +collegue)(?![a-z])"
    r"|(?<![a-z])(?:elle|il|elles|ils) +(?:vote|votent|voteront|votera|est|sont|doit|doivent)"
    r"(?![a-z])"
)
SELF = re.compile(
    r"(?<![a-z])(?:je +suis|j +ai +ete +recrute|je +travaille|j +enseigne|je +vote|moi +je"
    r"|je +dirige|j +accompagne|je +surveille)(?![a-z])"
)
# « est-ce les mêmes ? », « vote comme les PE ? », « quelle différence »: two sides to answer.
COMPARING = re.compile(
    r"(?<![a-z])(?:meme|memes|pareil|pareille|pareils|comme|identique|identiques|difference"
    r"|differences|different|differents|differente|differentes|versus|vs|plus +de +votes"
    r"|moins +de +votes|plus +de +scrutins|moins +de +scrutins|en +plus|autant)(?![a-z])"
)


# A sentence ends at . ! ? … or a line break; the question of a long message is usually its last
# interrogative sentence, after the context (« ma collègue m'a aidée… mais ce matin… ? »).
SENTENCE = re.compile(r"[^.!?…\n]+[.!?…]*")
QUESTION_WORDS = re.compile(
    r"(?<!\w)(?:comment|pourquoi|pk|pq|quand|o[uù]|quel|quelle|quels|quelles|qui|combien|est-ce"
    r"|est ce|c'est quoi|c quoi|qu'est|que faire|que dois|dois-je|puis-je|peut-on|faut-il"
    r"|pouvez-vous|pourriez-vous|je voudrais savoir|je voudrais|j'aimerais|je peux|je dois"
    r"|on doit|on peut|svp|stp|s'il vous pla[iî]t|merci de|aidez|aide)(?!\w)",
    re.IGNORECASE,
)
# Greetings and sign-offs of pasted e-mails are not the question.
FORMULA = re.compile(
    r"^\W*(?:bonjour|bonsoir|salut|madame|monsieur|cordialement|bien cordialement|merci"
    r"|bonne journ[ée]e|bonne soir[ée]e|sinc[eè]res salutations|bien [àa] vous|respectueusement"
    r"|mme|m\.|mlle|signature)\b",
    re.IGNORECASE,
)
MIN_FOCUS_WORDS = 3
# Words by which the writer points at their real question, after other matters: « accessoirement
# je voulais savoir X, mais ma vraie question : Y », « ce que je veux vraiment savoir, c'est Y ».
EMPHASIS = re.compile(
    r"(?<!\w)(?:ma|la|notre) +(?:vraie|seule|principale|vraiment +importante|grande) +question"
    r"(?: +(?:c'est|c’est|est|porte +sur|concerne))?|ma +question +(?:c'est|c’est|est|porte +sur)"
    r"|ce +que +(?:je|j'|on) *(?:veux|voudrais|aimerais|cherche +à|dois) +(?:vraiment +|surtout"
    r" +|juste +|seulement +)?(?:savoir|comprendre)(?: *,? *c'est| *,? *c’est)?"
    r"|(?:je +(?:veux|voudrais|cherche|demande)|j'aimerais) +surtout(?: +(?:savoir|comprendre))?"
    r"|(?<=[,.;:!?] )en +fait|^en +fait|par +contre",
    re.IGNORECASE,
)


def emphasised_question(text: str) -> tuple[int, int] | None:
    """The question the writer points at (`EMPHASIS`): from after the last pointing words to the
    end of their sentence, when at least `MIN_FOCUS_WORDS` words follow them."""
    for marker in reversed(list(EMPHASIS.finditer(text))):
        start = marker.end()
        ends = [m.end() for m in re.finditer(r"[.!?…\n]", text[start:])]
        end = start + next(
            (e for e in ends if len(text[start : start + e].split()) >= 2), len(text) - start
        )
        if len(re.findall(r"\w+", text[start:end])) >= MIN_FOCUS_WORDS:
            return start, end
    return None


def question_focus(text: str) -> tuple[int, int] | None:
    """Where the question of a long message is: its last interrogative sentence, else its last
    sentence that is not a greeting or a signature. None for a message of one sentence."""
    sentences = [m for m in SENTENCE.finditer(text) if len(m.group().split()) >= MIN_FOCUS_WORDS]
    sentences = [m for m in sentences if not FORMULA.match(m.group())] or sentences
    if len(sentences) < 2:
        return None
    asking = [m for m in sentences if "?" in m.group() or QUESTION_WORDS.search(m.group())]
    chosen = (asking or sentences)[-1]
    return chosen.start(), chosen.end()


@dataclass(frozen=True)
class Situation:
    """What a message says of the voter's situation."""

    academie: str | None  # the académie of now, if any was named
    former_academies: tuple[str, ...]  # académies named as past ones
    categories: tuple[str, ...]  # categories (or a group such as "PsyEN") named or described
    described: bool  # the categories come from a job description, not a name
    about_others: bool  # the writer asks for a colleague or a team
    comparison: bool  # the writer compares two categories or asks if they are the same
    asks: frozenset[str] = frozenset()  # ASKS_BALLOTS, ASKS_WHO, ASKS_WEBMAIL…
    needed_for: str | None = None  # with ASKS_NEEDS: the topic the need is for


class SituationReader:
    """Reads situations with the job descriptions of one knowledge base."""

    def __init__(
        self, cues: list[CategoryCues], groups: set[str], off_topic: tuple[str, ...] = ()
    ) -> None:
        self._rows = [(row, [_cue_pattern(c) for c in row.cues]) for row in cues]
        self._groups = groups
        self._off_topic = [_cue_pattern(c) for c in off_topic]

    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> SituationReader:
        return cls(kb.category_cues, set(kb.category_groups), kb.off_topic_cues)

    def off_topic(self, text: str) -> bool:
        """Whether the question of `text` is one the base does not answer: a cue of « Hors
        sujet » in the question (the one the writer points at, else the last question sentence,
        else the whole text), and none of the base's own topics named anywhere in the message."""
        if ON_TOPIC.search(" ".join(fold(text).split())):
            return False
        span = emphasised_question(text)
        asking = [m.group() for m in SENTENCE.finditer(text) if _asks(m.group())]
        question = text[span[0] : span[1]] if span else (asking[-1] if asking else text)
        folded = " ".join(fold(question).split())
        return any(p.search(folded) for p in self._off_topic)

    def read(self, text: str, matches: list[Match]) -> Situation:
        folded = " ".join(fold(text).split())
        academie, former = current_academie(text, [m for m in matches if m.entity == "academie"])
        named = _unique(m.value for m in matches if m.entity == "categorie")
        described = False
        comparing = bool(COMPARING.search(folded))
        if not named:
            named = self.described_categories(folded)
            described = bool(named)
        elif comparing and len(named) == 1:
            # « un directeur d'école spécialisée vote-t-il comme un adjoint de classe ordinaire ? »
            rest = self.described_categories(_blank(text, matches))
            named += tuple(c for c in rest if c not in named and c != OUTSIDE_TABLE)
        categories = tuple(c for value in named for c in self._refine(value, folded))
        categories += self._members_also_described(text, matches, categories)
        return Situation(
            academie=academie,
            former_academies=former,
            categories=tuple(_unique(categories)),
            described=described,
            about_others=bool(OTHERS.search(folded)) and not _self_named(folded, named),
            comparison=len(set(categories)) > 1 and comparing,
            asks=question_kinds(text) | ({OFF_TOPIC} if self.off_topic(text) else set()),
            needed_for=_needed_for(folded),
        )

    def described_categories(self, folded: str) -> tuple[str, ...]:
        """The category the job description designates: the highest row whose cues match."""
        for row, patterns in self._rows:
            if row.refines is None and any(p.search(folded) for p in patterns):
                return (row.name,)
        return ()

    def description_span(self, text: str, category: str) -> tuple[int, int]:
        """Where in `text` the job description of `category` is (the first cue that matches)."""
        folded = fold(text)
        for row, patterns in self._rows:
            if row.name != category:
                continue
            for pattern in patterns:
                found = pattern.search(folded)
                if found:
                    return found.start(), found.end()
        return 0, len(text)

    def _members_also_described(
        self, text: str, matches: list[Match], categories: tuple[str, ...]
    ) -> tuple[str, ...]:
        """« un PsyEN détaché et un intégré »: the second member is described, not named."""
        rest = _blank(text, matches)
        extra: list[str] = []
        for group in self._groups:
            if any(c.startswith(f"{group} ") for c in categories):
                extra += [c for c in self._refine(group, rest) if c != group]
        return tuple(c for c in extra if c not in categories)

    def _refine(self, value: str, folded: str) -> tuple[str, ...]:
        """A group name made precise by the cues that refine it (« PsyEN » + « détachée »).

        Each row only reads what the rows above it left: « pas intégrée » is a cue of the
        détaché row, so the « intégrée » in it no longer counts for the intégré row; « un
        détaché et un intégré » names both.
        """
        if value not in self._groups:
            return (value,)
        found = []
        for row, patterns in self._rows:
            if row.refines != value:
                continue
            hit = False
            for pattern in patterns:
                for match in pattern.finditer(folded):
                    hit = True
                    folded = (
                        folded[: match.start()] + " " * len(match.group()) + folded[match.end() :]
                    )
            if hit:
                found.append(row.name)
        return tuple(found) or (value,)


def question_kinds(text: str) -> frozenset[str]:
    """What the questions of `text` ask (its question sentences, else the whole text)."""
    asking = [m.group() for m in SENTENCE.finditer(text) if _asks(m.group())]
    kinds = _kinds(" ".join(asking) or text)
    if not kinds and asking:
        # « Il faut aller sur le webmail. C'est quoi l'adresse ? »: the question points back
        # to what the sentences before it named.
        kinds = _kinds(text)
    folded = " ".join(fold(" ".join(asking) or text).split())
    if ASKS_WHO in kinds and SELF_CHECK.search(folded):
        kinds.discard(ASKS_WHO)  # « c'est pour moi aussi ? »: a yes or no for the writer
    return frozenset(kinds)


def _kinds(text: str) -> set[str]:
    folded = " ".join(fold(text).split())
    return {kind for kind, words in QUESTION_KINDS.items() if words.search(folded)}


def _asks(sentence: str) -> bool:
    return "?" in sentence or bool(QUESTION_WORDS.search(sentence))


def implied_topic(
    situation: Situation, scrutin_named: bool, topic: str | None = None
) -> str | None:
    """The answer the names and the question's words agree on, whatever the classifier said
    (`topic`): who votes in a named scrutin, a named or described category's scrutins, a named
    place's webmail; and no results of these elections for a question about earlier ones.
    None when they do not point to one."""
    if topic == "results" and EARLIER_ELECTIONS in situation.asks:
        return "out_of_scope"  # the knowledge base knows the 2018 elections only
    if ASKS_WHO in situation.asks and scrutin_named:
        return "who_votes_where"  # with a scrutin named, its voters
    ballots = situation.categories and (ASKS_BALLOTS in situation.asks or situation.comparison)
    webmail = situation.academie and ASKS_WEBMAIL in situation.asks
    if OFF_TOPIC in situation.asks and not ballots and not webmail:
        return "out_of_scope"  # « la CAPD a-t-elle validé ma promotion ? »
    if CORRECTING in situation.asks:
        return None  # « mes scrutins sont faux » : a contest, whatever the names
    if situation.categories and (ASKS_BALLOTS in situation.asks or situation.comparison):
        return "who_votes_where"
    if situation.categories and scrutin_named and topic in ("inform", "who_votes_where"):
        return "who_votes_where"  # « PES : la CAPN PE, oui ou non ? »: the same answer
    if situation.academie and ASKS_WEBMAIL in situation.asks:
        return "webmail_access"
    if ASKS_NEEDS in situation.asks and situation.needed_for:
        return situation.needed_for
    return None


# What a « de quoi aurai-je besoin ? » is for: a new voter ID, a new password, or voting (the
# first that the message names).
NEEDED_FOR = (
    (
        "lost_voter_id",
        re.compile(
            r"(?<![a-z])(?:nouvel +identifiant|renvoyer +(?:mon|l|un)"
            r" +identifiant|identifiant +(?:perdu|electeur +perdu)"
            r"|redemander +(?:un|mon) +identifiant)"
        ),
    ),
    (
        "lost_voter_password",
        re.compile(
            r"(?<![a-z])(?:reinitialiser|mot +de +passe +oublie"
            r"|nouveau +mot +de +passe)"
        ),
    ),
    (
        "how_to_vote",
        re.compile(
            r"(?<![a-z])(?:pour +voter|jour +du +vote|le +jour +j"
            r"|au +moment +de +voter|voter +a +partir)"
        ),
    ),
)


def _needed_for(folded: str) -> str | None:
    return next((topic for topic, words in NEEDED_FOR if words.search(folded)), None)


def current_academie(text: str, matches: list[Match]) -> tuple[str | None, tuple[str, ...]]:
    """The académie the writer is in now, and those they name as past ones.

    Each académie is judged by the words of its own clause (« j'étais à Nantes jusqu'en juin »
    is past; « maintenant je suis à Rennes » is now). When nothing tells, the last one named
    is taken as the current one.
    """
    values = _unique(m.value for m in matches)
    if len(values) <= 1:
        return (values[0] if values else None), ()
    folded = fold(text)
    tense: dict[str, str] = {}
    for match in matches:
        clause = _clause_around(text, folded, match.start, match.end)
        past, present = bool(PAST.search(clause)), bool(PRESENT.search(clause))
        if NOT_THE_WORKPLACE.search(clause):
            tense[match.value] = "past"
        elif past and not present:
            tense.setdefault(match.value, "past")
        elif present and not past:
            tense[match.value] = "present"
    now = [v for v in values if tense.get(v) == "present"]
    undecided = [v for v in values if v not in tense]
    current = (now or undecided or values)[-1]
    return current, tuple(v for v in values if v != current)


def _clause_around(text: str, folded: str, start: int, end: int) -> str:
    """The clause of `folded` that holds [start, end), without the name itself (boundaries are
    read on `text`, where the punctuation still is)."""
    cuts = list(CLAUSE.finditer(text))
    left = max((m.start() for m in cuts if m.end() <= start), default=0)
    right = min((m.start() for m in cuts if m.start() >= end), default=len(folded))
    return " ".join((folded[left:start] + " " + folded[end:right]).split())


def _self_named(folded: str, named: tuple[str, ...]) -> bool:
    """« je suis AESH » (the writer's own category) outweighs « mes collègues »."""
    return bool(SELF.search(folded)) and len(named) == 1 and not OTHERS.search(folded)


def _cue_pattern(cue: str) -> re.Pattern[str]:
    """A cue of the knowledge base as a pattern on folded text (`*`: any ending, `…`: a gap)."""
    pattern = ""
    for word in cue.replace(GAP, f" {GAP} ").split():
        if word == GAP:
            pattern += r"(?: +[a-z0-9]+){0,4}"
            continue
        stem = " ".join(fold(word.rstrip("*")).split())
        body = " +".join(re.escape(w) for w in stem.split())
        if word.endswith("*"):
            body += "[a-z0-9]*"
        elif len(stem) >= 4:
            body += "e?s?"
        pattern += (" +" if pattern else "") + body
    return re.compile(r"(?<![a-z0-9])" + pattern + r"(?![a-z0-9])")


def _blank(text: str, matches: list[Match]) -> str:
    """The folded text without the names found in it."""
    blanked = list(fold(text))
    for match in matches:
        blanked[match.start : match.end] = " " * (match.end - match.start)
    return " ".join("".join(blanked).split())


def _unique(values) -> tuple[str, ...]:
    seen: list[str] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return tuple(seen)
