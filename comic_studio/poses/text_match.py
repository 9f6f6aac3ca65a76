"""Pure-Python text matching for pose retrieval when the sentence model is not installed.

Captions and queries are reduced to normalised tokens: lower case, stop words dropped, a crude
suffix stemmer (so "hugging", "hugs" and "hug" meet), irregular verb forms and synonyms mapped to one
canonical action word ("strike"/"hit"/"punch" → punch, "embrace" → hug, "sprint" → run). Scoring is the
cosine of IDF-weighted token sets: rare, specific words ("sword", "kneel") count more than "man".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

_WORD = re.compile(r"[a-z]+")

STOP_WORDS = frozenset(
    """a an the and or but of in on at to into onto from by with without for as is are was were be been
    being his her hers their theirs its it he she they them him this that these those who whom which
    while then than so very really just also one two three another other others each some all up down
    over out off away back there here hard softly quickly slowly again still now suddenly people person
    someone somebody together both along across through towards toward around beside near behind
    before after about against""".split()
)
# Gender words help a little ("a woman kneels") but must not outweigh the action.
LIGHT_WORDS = {"man": 0.3, "woman": 0.3, "child": 0.5}

IRREGULAR = {
    "ran": "run", "sat": "sit", "seated": "sit", "lay": "lie", "lain": "lie", "lying": "lie",
    "fell": "fall", "fallen": "fall", "knelt": "kneel", "slept": "sleep", "asleep": "sleep",
    "ate": "eat", "eaten": "eat", "struck": "strike", "held": "hold", "caught": "catch", "thought": "think",
    "wept": "weep", "spoke": "speak", "said": "say", "told": "tell", "fought": "fight", "leapt": "leap",
    "hit": "hit", "stood": "stand", "sprang": "spring", "drew": "draw", "shot": "shoot", "threw": "throw",
    "men": "man", "women": "woman", "guy": "man", "boy": "child", "girl": "child", "kid": "child",
    "children": "child", "kids": "child", "lady": "woman", "gentleman": "man", "mother": "woman",
    "father": "man", "mom": "woman", "dad": "man",
}  # fmt: skip

# canonical action word → words that mean it in a story.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "punch": ("strike", "hit", "sock", "smack", "slug", "jab", "uppercut", "slap", "clobber", "beat", "thump",
              "pummel", "bash", "boxer"),
    "hug": ("embrace", "cuddle", "hold tight", "squeeze", "clasp"),
    "run": ("sprint", "dash", "rush", "race", "flee", "jog", "bolt", "chase", "escape", "hurry"),
    "walk": ("stroll", "stride", "wander", "march", "amble", "saunter", "pace", "approach", "step"),
    "sit": ("perch", "seat", "bench", "chair", "couch", "sofa"),
    "lie": ("sprawl", "recline", "prone"),
    "sleep": ("doze", "nap", "snooze", "slumber", "rest", "dream", "couch"),
    "kneel": ("genuflect", "knee", "beg", "plead", "propose", "pray", "bow"),
    "jump": ("leap", "hop", "spring", "bound", "vault", "pounce"),
    "fall": ("tumble", "trip", "collapse", "topple", "stumble", "slip", "knock"),
    "point": ("indicate", "gesture at", "show"),
    "wave": ("beckon", "greet", "hello", "goodbye", "farewell", "salute"),
    "talk": ("speak", "say", "chat", "tell", "converse", "discuss", "explain", "argue", "whisper", "shout",
             "yell", "ask", "reply", "answer", "conversation"),
    "think": ("ponder", "wonder", "consider", "contemplate", "muse", "reflect", "thought", "puzzle"),
    "cry": ("weep", "sob", "tear", "wail", "mourn", "grieve", "sad"),
    "laugh": ("giggle", "chuckle", "cackle", "guffaw", "roar with laughter"),
    "kick": ("boot", "stomp"),
    "block": ("parry", "deflect", "defend", "guard", "shield", "dodge"),
    "grab": ("seize", "grasp", "clutch", "grip", "catch", "snatch", "arrest", "restrain"),
    "pull": ("drag", "tug", "haul", "lead", "yank"),
    "kiss": ("smooch", "peck"),
    "hold": ("clasp",),
    "carry": ("lift", "tote", "bear", "piggyback", "rescue"),
    "fight": ("fighter", "fist", "brawl", "spar", "battle", "combat", "scuffle", "duel", "attack"),
    "weapon": ("sword", "blade", "knife", "dagger", "gun", "pistol", "rifle", "axe", "spear", "aim", "shoot"),
    "read": ("study", "peruse", "book", "novel", "letter", "newspaper"),
    "eat": ("dine", "munch", "chew", "bite", "meal", "lunch", "dinner", "breakfast", "feast", "food"),
}  # fmt: skip


def stem(word: str) -> str:
    """A deliberately small stemmer: consistent on both sides is all retrieval needs."""
    word = IRREGULAR.get(word, word)
    for suffix in ("ies", "ied"):  # cries/cried → cry, parries → parry
        if word.endswith(suffix) and len(word) - 3 >= 2:
            return IRREGULAR.get(word[:-3] + "y", word[:-3] + "y")
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                break  # "kiss", "cross" are not plurals
            base = word[: -len(suffix)]
            # Doubled final consonant from inflection: hugging → hug, running → run (not "fall").
            if len(base) >= 3 and base[-1] == base[-2] and base[-1] not in "lsz" and suffix in ("ing", "ed"):
                base = base[:-1]
            word = IRREGULAR.get(base, base)
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def _build_synonym_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for canonical, words in SYNONYMS.items():
        for w in words:
            if " " not in w:
                table.setdefault(stem(w), stem(canonical))
    return table


_SYN = _build_synonym_table()
_ACTIONS = frozenset(stem(a) for a in SYNONYMS) | {"stand", "hand"}
ACTION_WEIGHT = 2.0


# Idioms whose words mislead a bag of words ("falls to her knees" is kneeling, not falling).
_IDIOMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (
            r"\b(?:fall|falls|fell|falling|drop|drops|dropped|dropping|sink|sinks|sank) to "
            r"(?:his|her|their|its|one's|the) knees?\b",
            "kneels",
        ),
        (r"\bhand in hand\b", "holding hands"),
        (r"\bburst(?:s|ing)? (?:into|in) tears\b", "cries"),
        (r"\b(?:in tears|tears stream\w*)\b", "cries"),
        (r"\bfall(?:s|ing)? asleep\b|\bfell asleep\b|\bnod(?:s|ded)? off\b", "sleeps"),
        (r"\bsit(?:s|ting)? up\b", "sits"),
        (r"\bget(?:s|ting)? up\b|\bgot up\b|\bstand(?:s|ing)? up\b|\bstood up\b", "stands"),
        (r"\b(?:lie|lies|lay|lying) down\b", "lies"),
        (r"\bthrow(?:s|ing)? a punch\b|\bthrew a punch\b", "punches"),
        (r"\bpick(?:s|ed|ing)? (?:\w+ ){0,2}up\b", "lifts"),
    )
)


def normalise(text: str) -> str:
    """Lower-case ``text`` and rewrite the idioms above."""
    text = text.lower().replace("\u2019", "'")
    for pattern, replacement in _IDIOMS:
        text = pattern.sub(replacement, text)
    return text


def tokens(text: str) -> list[str]:
    """Normalised tokens of ``text``; each synonym also yields its canonical action word."""
    out: list[str] = []
    for raw in _WORD.findall(normalise(text)):
        if raw in STOP_WORDS or len(raw) < 2:
            continue
        word = stem(raw)
        if word in STOP_WORDS:
            continue
        out.append(word)
        canonical = _SYN.get(word)
        if canonical and canonical != word:
            out.append(canonical)
    return out


class OverlapIndex:
    """IDF-weighted token-set cosine between a query and a fixed list of documents."""

    def __init__(self, documents: Sequence[str]):
        self._docs = [set(tokens(d)) for d in documents]
        df = Counter(t for d in self._docs for t in d)
        n = len(self._docs)
        self._idf = {t: math.log(1 + n / c) for t, c in df.items()}
        self._norms = [math.sqrt(sum(self._weight(t) ** 2 for t in d)) or 1.0 for d in self._docs]

    def _weight(self, token: str) -> float:
        # The action is what picks a pose: canonical action words count double, gender words little.
        boost = ACTION_WEIGHT if token in _ACTIONS else LIGHT_WORDS.get(token, 1.0)
        return self._idf.get(token, 0.0) * boost

    def scores(self, query: str, candidates: Iterable[int]) -> list[tuple[int, float]]:
        q = set(tokens(query))
        qn = math.sqrt(sum(self._weight(t) ** 2 for t in q)) or 1.0
        out = []
        for i in candidates:
            shared = q & self._docs[i]
            out.append((i, sum(self._weight(t) ** 2 for t in shared) / (qn * self._norms[i])))
        return out
