"""The singulariser the reference CHAIR runs, rebuilt without its library.

LisaAnne/Hallucination's ``utils/chair.py`` singularises every caption token with ``pattern.en.singularize``
(pattern 3.6, a Python-2-era package that could not be installed here). CHAIR's numbers depend on its quirks as
much as on its rules, so this module re-implements that function's decision order and rule table (pattern's rules
are adapted from Bermi Ferrer's Inflector, BSD/MIT-style licences) rather than using a modern lemmatiser:

1. a word that is the *end of* one of the uninflected or uncountable words is returned unchanged (so "ears" stays,
   being the end of "shears", and "is" stays, being the end of "debris");
2. words ending in one of its "-ie" nouns plus "s" are returned unchanged ("cookies" stays "cookies");
3. irregular plurals are matched as *suffixes* ("women" -> "woman", "firemen" -> "fireman", "four" -> "fmy");
4. the first suffix rule that matches wins; the last one strips any final "s" ("glass" -> "glas", "bus" -> "bu",
   "tennis" -> "tenni"), which is why the reference's tables carry entries such as "wine glas".

Checked against clips/pattern's own ``singularize`` (its master branch, whose rules are those of the 3.7 beta;
3.6 itself could not be installed here) on 6,226 words (caption, synonym and rule words): the same result for
every one. Where this can differ from the reference: pattern's irregular table is a dict, so under Python 2 its
order was the hash order; no two of its keys are suffixes of the same common word, so the order does not change a
result. Only lower-case input is expected (CHAIR lower-cases captions first); pattern's case handling is not
reproduced.
"""

from __future__ import annotations

import re
from functools import lru_cache

_UNINFLECTED = frozenset(
    "bison bream breeches britches carp chassis christmas clippers cod contretemps corps debris diabetes djinn eland "
    "elk flounder gallows georgia graffiti headquarters herpes high-jinks homework innings jackanapes mackerel "
    "measles mews mumps news pincers pliers proceedings rabies salmon scissors series shears species swine swiss "
    "trout tuna whiting wildebeest".split()
)
_UNCOUNTABLE = frozenset(
    "advice bread butter cheese electricity equipment fruit furniture garbage gravel happiness information "
    "ketchup knowledge love luggage mathematics mayonnaise meat mustard news progress research rice sand software "
    "understanding water".split()
)
# pattern writes two of these as "^pie" and "^tie" but compares them as plain text, not as patterns: kept so
_IE_NOUNS = (
    "^pie ^tie alergie auntie beanie birdie bogie bombie collie cookie cutie doggie eyrie freebie goonie groupie "
    "hankie hippie hoagie hottie indie junkie laddie laramie lingerie meanie newbie nightie oldie pixie quickie "
    "reverie rookie softie sortie stoolie sweetie techie toughie valkyrie veggie weenie yuppie zombie".split()
)
_IRREGULAR = {
    "atlantes": "atlas",
    "atlases": "atlas",
    "axes": "axe",
    "beeves": "beef",
    "brethren": "brother",
    "children": "child",
    "corpora": "corpus",
    "corpuses": "corpus",
    "ephemerides": "ephemeris",
    "feet": "foot",
    "ganglia": "ganglion",
    "geese": "goose",
    "genera": "genus",
    "genii": "genie",
    "graffiti": "graffito",
    "helves": "helve",
    "kine": "cow",
    "leaves": "leaf",
    "loaves": "loaf",
    "men": "man",
    "mongooses": "mongoose",
    "monies": "money",
    "moves": "move",
    "mythoi": "mythos",
    "numena": "numen",
    "occipita": "occiput",
    "octopodes": "octopus",
    "opera": "opus",
    "opuses": "opus",
    "our": "my",
    "oxen": "ox",
    "penes": "penis",
    "penises": "penis",
    "people": "person",
    "sexes": "sex",
    "soliloquies": "soliloquy",
    "teeth": "tooth",
    "testes": "testis",
    "trilbys": "trilby",
    "turves": "turf",
    "zoa": "zoon",
}
# (pattern, replacement) in pattern's order; the first that matches decides. A few keep the word as it is: they
# exist to stop the final "s" rule ("arthritis", "series", "news").
_RULES = [
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"(.)ae$", r"\1a"),
        (r"(.)itis$", r"\1itis"),
        (r"(.)eaux$", r"\1eau"),
        (r"(quiz)zes$", r"\1"),
        (r"(matr)ices$", r"\1ix"),
        (r"(ap|vert|ind)ices$", r"\1ex"),
        (r"^(ox)en", r"\1"),
        (r"(alias|status)es$", r"\1"),
        (r"([octp|vir])i$", r"\1us"),  # a character class in pattern too: "safari" -> "safarus"
        (r"(cris|ax|test)es$", r"\1is"),
        (r"(shoe)s$", r"\1"),
        (r"(o)es$", r"\1"),
        (r"(bus)es$", r"\1"),
        (r"([m|l])ice$", r"\1ouse"),  # "mice" -> "mouse", and "slice" -> "slouse"
        (r"(x|ch|ss|sh)es$", r"\1"),
        (r"(m)ovies$", r"\1ovie"),
        (r"(.)ombies$", r"\1ombie"),
        (r"(s)eries$", r"\1eries"),
        (r"([^aeiouy]|qu)ies$", r"\1y"),
        (r"([aeo]l)ves$", r"\1f"),
        (r"([^d]ea)ves$", r"\1f"),
        (r"arves$", "arf"),
        (r"erves$", "erve"),
        (r"([nlw]i)ves$", r"\1fe"),
        (r"([lr])ves$", r"\1f"),
        (r"([aeo])ves$", r"\1ve"),
        (r"(sive)s$", r"\1"),
        (r"(tive)s$", r"\1"),
        (r"(hive)s$", r"\1"),
        (r"([^f])ves$", r"\1fe"),
        (r"(^analy)ses$", r"\1sis"),
        # pattern's "((a)naly|(b)a|...)ses$" -> "\1\2sis" with unmatched groups dropped: only "analy" keeps its "a"
        (r"(analy)ses$", r"\1asis"),
        (r"(ba|diagno|parenthe|progno|synop|the)ses$", r"\1sis"),
        (r"(.)opses$", r"\1opsis"),
        (r"(.)yses$", r"\1ysis"),
        (r"(h|d|r|o|n|b|cl|p)oses$", r"\1ose"),
        (r"(fruct|gluc|galact|lact|ket|malt|rib|sacchar|cellul)ose$", r"\1ose"),
        (r"(.)oses$", r"\1osis"),
        (r"([ti])a$", r"\1um"),  # "data" -> "datum", and "pasta" -> "pastum"
        (r"(n)ews$", r"\1ews"),
        (r"s$", ""),
    )
]
_PREPOSITIONS = frozenset(
    "about above across after among around at athwart before behind below beneath beside besides between betwixt "
    "beyond but by during except for from in into near of off on onto out over since till to under until unto upon "
    "with".split()
)


@lru_cache(maxsize=1 << 16)  # captions repeat their words; the rules are pure
def singularize(word: str) -> str:
    """The singular pattern 3.6 gives for a lower-case noun, quirks included (see the module docstring)."""
    if "-" in word:
        head, *rest = word.split("-")
        if rest and rest[0] in _PREPOSITIONS:  # mothers-in-law -> mother-in-law
            return singularize(head) + "-" + "-".join(rest)
    if word.endswith("'"):
        return singularize(word[:-1]) + "'s"
    if any(known.endswith(word) for known in _UNINFLECTED | _UNCOUNTABLE):
        return word
    if any(word.endswith(noun + "s") for noun in _IE_NOUNS):
        return word
    for plural, singular in _IRREGULAR.items():
        if word.endswith(plural):
            return word[: -len(plural)] + singular
    for pattern, replacement in _RULES:
        if pattern.search(word):
            return pattern.sub(replacement, word)
    return word
