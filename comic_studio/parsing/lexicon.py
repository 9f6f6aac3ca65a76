"""Word lists the rule parser reasons with: verbs, speech verbs, places, times, moods, shot cues.

Kept as data (frozensets of lower-case forms) so lookups are O(1) per token, which is what keeps
the parser above 50k words/s. Verb inflections are generated, deliberately over-generating
("grabed" as well as "grabbed"): a nonsense form never occurs in text, so it costs nothing.
"""

from __future__ import annotations

from comic_studio.core.model import DialogueKind

# ----------------------------------------------------------------------------- verbs

_ACTION_BASES = """
open close shut lock unlock push pull grab take give hand hold drop throw catch toss pass lift carry
raise lower put place set pick turn twist spin walk run race rush hurry dash sprint stride stroll
step stumble trip fall slip jump leap climb crawl creep sneak sit stand rise kneel lie lay lean
crouch duck dive swim fly ride drive park stop start enter leave exit arrive return approach follow
chase flee escape hide search find look glance stare gaze peer watch see notice spot point wave nod
shake shrug smile grin laugh giggle chuckle cry weep sob frown scowl glare wince blush gasp sigh
tremble shiver hug embrace kiss touch stroke pat tap slap punch kick hit strike smash crash slam
break tear cut stab shoot fire aim load draw sheathe swing block parry dodge wrestle tackle shove
pin choke grip squeeze release free rescue save help carry drag haul tug yank knock ring answer
call dial text type write read sign paint sketch cook eat drink sip pour serve bake chop stir wash
clean wipe sweep fold pack unpack dress undress wear button zip tie untie comb brush shave bathe
sleep wake yawn stretch rest wait pace pause freeze collapse faint die kill attack defend fight
kick hurl wield brandish raise salute bow curtsy dance sing play strum hum whistle clap cheer
wander roam march storm burst slide glide float sink drown bleed heal bandage examine inspect
check test taste smell sniff listen hear feel offer show reveal present accept refuse steal
shove snatch seize clutch cradle rock bury dig plant water feed pet mount dismount board
descend ascend cross swerve sail row paddle steer crash explode burn light blow extinguish
shatter scatter gather collect count hand toss flip roll bounce kick hug tickle wrestle scramble
slump sag shrink straighten stiffen relax settle perch hang dangle swing reach stretch grasp
point tilt cock rub scratch bite chew swallow spit cough sneeze vomit sweat struggle fidget
whirl wheel pivot spin lunge charge pounce retreat advance recoil flinch stagger sway totter
stomp tiptoe limp hobble skip hop bounce shuffle lurch plunge tumble topple hurl fling heave
kneel beg plead pray bless marry greet meet introduce welcome invite thank hold comfort console
kiss caress nuzzle cuddle snuggle wink blink squint nap doze awaken stir emerge appear vanish
disappear approach near circle surround trap corner ambush attack invade conquer defeat shield
cover uncover unwrap wrap bind chain cuff shackle untie loosen tighten
""".split()

_IRREGULAR = {
    "take": "took taken",
    "give": "gave given",
    "run": "ran",
    "sit": "sat",
    "stand": "stood",
    "hold": "held",
    "throw": "threw thrown",
    "fall": "fell fallen",
    "leave": "left",
    "come": "came",
    "go": "went gone goes",
    "see": "saw seen",
    "get": "got gotten",
    "put": "put",
    "hit": "hit",
    "cut": "cut",
    "shut": "shut",
    "set": "set",
    "let": "let",
    "read": "read",
    "bring": "brought",
    "catch": "caught",
    "fight": "fought",
    "find": "found",
    "lie": "lay lain lying",
    "lay": "laid",
    "rise": "rose risen",
    "drive": "drove driven",
    "ride": "rode ridden",
    "fly": "flew flown",
    "draw": "drew drawn",
    "break": "broke broken",
    "speak": "spoke spoken",
    "wake": "woke woken",
    "swing": "swung",
    "strike": "struck",
    "sink": "sank sunk",
    "spin": "spun",
    "leap": "leapt",
    "kneel": "knelt",
    "creep": "crept",
    "sleep": "slept",
    "sweep": "swept",
    "weep": "wept",
    "keep": "kept",
    "meet": "met",
    "feel": "felt",
    "hide": "hid hidden",
    "bite": "bit bitten",
    "shake": "shook shaken",
    "eat": "ate eaten",
    "drink": "drank drunk",
    "begin": "began begun",
    "write": "wrote written",
    "sing": "sang sung",
    "swim": "swam swum",
    "tear": "tore torn",
    "wear": "wore worn",
    "hang": "hung",
    "dig": "dug",
    "lead": "led",
    "feed": "fed",
    "send": "sent",
    "build": "built",
    "lose": "lost",
    "shoot": "shot",
    "slide": "slid",
    "freeze": "froze frozen",
    "blow": "blew blown",
    "grow": "grew grown",
    "know": "knew known",
    "tell": "told",
    "sell": "sold",
    "teach": "taught",
    "buy": "bought",
    "hear": "heard",
    "make": "made",
    "win": "won",
    "light": "lit",
    "become": "became",
    "fling": "flung",
    "cling": "clung",
    "stride": "strode",
    "seek": "sought",
    "bend": "bent",
    "dream": "dreamt",
    "burn": "burnt",
    "say": "said",
    "think": "thought",
    "shine": "shone",
    "wring": "wrung",
    "sting": "stung",
    "spit": "spat",
    "bleed": "bled",
    "flee": "fled",
    "stick": "stuck",
    "forgive": "forgave forgiven",
    "awake": "awoke awoken",
}

_AUX = """
is are was were be been being am has have had having do does did
""".split()


def _inflect(base: str) -> set[str]:
    forms = {base}
    if base.endswith(("s", "sh", "ch", "x", "z", "o")):
        forms.add(base + "es")
    elif base.endswith("y") and base[-2:-1] not in "aeiou":
        forms.add(base[:-1] + "ies")
    else:
        forms.add(base + "s")
    if base.endswith("e"):
        forms.update({base + "d", base[:-1] + "ing"})
        if base.endswith(("ee", "ye", "oe")):
            forms.add(base + "ing")
    elif base.endswith("y") and base[-2:-1] not in "aeiou":
        forms.update({base[:-1] + "ied", base + "ing"})
    else:
        forms.update({base + "ed", base + "ing"})
        # Consonant doubling ("grab" → "grabbed", "grabbing"): generated for every CVC ending.
        if len(base) >= 3 and base[-1] not in "aeiouwxy" and base[-2] in "aeiou" and base[-3] not in "aeiou":
            forms.update({base + base[-1] + "ed", base + base[-1] + "ing"})
    if base.endswith("ie"):
        forms.add(base[:-2] + "ying")
    forms.update(_IRREGULAR.get(base, "").split())
    return forms


_NOT_VISIBLE = {
    "say",
    "think",
    "tell",
    "know",
    "hear",
    "speak",
    "dream",
    "forgive",
    "seek",
    "become",
    "teach",
    "sell",
    "buy",
    "lose",
    "win",
    "let",
    "get",
    "make",
    "feel",
}
ACTION_VERBS: frozenset[str] = frozenset(
    f for b in (set(_ACTION_BASES) | set(_IRREGULAR)) - _NOT_VISIBLE for f in _inflect(b)
)
"""Inflected forms of verbs that describe something a reader could see in a panel."""
AUX_VERBS: frozenset[str] = frozenset(_AUX)
ALL_VERBS: frozenset[str] = ACTION_VERBS | AUX_VERBS | frozenset(f for b in _NOT_VISIBLE for f in _inflect(b))

# Speech verbs decide a dialogue line's kind. Inflected forms map to the kind.
_SPEECH = {
    DialogueKind.SPEECH: "say ask reply answer tell add begin continue explain insist admit agree "
    "sigh laugh snap growl plead beg demand warn repeat stammer stutter call announce declare "
    "whine groan moan protest respond retort remark observe note suggest offer promise "
    "confess chuckle sob gasp grunt purr drawl quip mock tease joke counter interrupt",
    DialogueKind.SHOUT: "shout yell scream roar bellow shriek holler exclaim howl bark thunder cry",
    DialogueKind.WHISPER: "whisper murmur mutter breathe hiss mumble",
    DialogueKind.THOUGHT: "think wonder muse reflect ponder",
}
SPEECH_VERBS: dict[str, DialogueKind] = {}
for _kind, _bases in _SPEECH.items():
    for _b in _bases.split():
        for _f in _inflect(_b):
            SPEECH_VERBS.setdefault(_f, _kind)

# Adverbs and fillers that may sit between a subject and its verb, or after "and".
SKIPPABLE = frozenset(
    "then suddenly finally slowly quickly quietly softly gently carefully immediately again also "
    "just still even almost barely nearly silently angrily calmly sadly nervously eventually "
    "instantly abruptly hastily reluctantly firmly briefly".split()
)

CONJUNCTIONS = frozenset({"and", "but", "then", "while", "as"})

# ----------------------------------------------------------------------------- pronouns

# pronoun → (pronoun set, role). role: subj / obj / poss (determiner) / posspro (stand-alone) / refl
PRONOUNS: dict[str, tuple[str, str]] = {
    "he": ("he", "subj"),
    "him": ("he", "obj"),
    "his": ("he", "poss"),
    "himself": ("he", "refl"),
    "she": ("she", "subj"),
    "her": ("she", "obj"),
    "hers": ("she", "posspro"),
    "herself": ("she", "refl"),
    "they": ("they", "subj"),
    "them": ("they", "obj"),
    "their": ("they", "poss"),
    "theirs": ("they", "posspro"),
    "themselves": ("they", "refl"),
    "themself": ("they", "refl"),
    "it": ("it", "subj"),
    "its": ("it", "poss"),
    "itself": ("it", "refl"),
}

# After "her", these words mean "her" is an object ("gives her the key"), not a possessive.
AFTER_OBJECT_HER = frozenset(
    "a an the to and or but in on at with by for from into onto of off up down out over away back "
    "that this these those some his her their my your our its as than so if when while then again "
    "too now here there once twice".split()
)

# ----------------------------------------------------------------------------- places & times

PLACE_NOUNS = frozenset(
    """kitchen docks dock harbour harbor port station bar pub house home office church forest woods
    beach street park library hospital school castle cave ship garden market room bedroom bathroom
    hall hallway corridor city village town airport cafe café restaurant diner warehouse alley roof
    rooftop bridge field lake river mountain mountains apartment flat hotel lobby basement attic
    lab laboratory bakery shop store museum temple tavern inn courtyard palace train platform
    square plaza cemetery graveyard farm barn stable tower dungeon throne arena stadium gym
    classroom studio theatre theater cinema club cellar shore coast pier lighthouse desert jungle
    valley hill hills meadow camp tent cabin cottage mansion manor palace subway tunnel highway
    road motel parking garage factory mill mine island ocean sea deck cockpit bunker base
    headquarters precinct jail prison cell courtroom court library bookshop bookstore chapel
    cathedral mosque shrine market marketplace kitchenette lounge porch balcony terrace yard
    backyard driveway wharf quay marina embassy observatory greenhouse orchard vineyard""".split()
)

TIME_WORDS: dict[str, str] = {
    "dawn": "dawn",
    "daybreak": "dawn",
    "sunrise": "dawn",
    "morning": "morning",
    "noon": "noon",
    "midday": "noon",
    "afternoon": "afternoon",
    "evening": "evening",
    "dusk": "dusk",
    "sunset": "dusk",
    "twilight": "dusk",
    "nightfall": "night",
    "night": "night",
    "midnight": "night",
    "tonight": "night",
    "day": "day",
    "daytime": "day",
}

MONTHS = frozenset("january february march april may june july august september october november december".split())
WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())

# ----------------------------------------------------------------------------- shots and moods

EXTREME_CLOSE_CUES = frozenset("pupil pupils iris lips fingertip fingertips trigger keyhole tear-streaked".split())
CLOSE_UP_CUES = frozenset(
    """face faces eye eyes tear tears cries cried crying weeps wept weeping sobs sobbed sobbing smiles smiled
    smiling grins grinned frowns frowned blushes blushed flushes gasps gasped tremble trembles trembled trembling
    winces winced afraid angry furious terrified scared sad happy joy joyful horrified shocked
    surprised stunned nervous anxious tearful grief despair relief ashamed embarrassed jealous
    lonely heartbroken hopeful disgusted bewildered confused frightened panicked glares glared
    scowls scowled bites swallows swallowed sighs sighed kisses kissed""".split()
)
WIDE_CUES = frozenset(
    """crowd crowds army armies battle battlefield war soldiers horde mob audience landscape
    horizon valley fields desert ocean sea skyline mountains plains forest chase chases chased
    stampede fleet everyone""".split()
)
ESTABLISHING_CUES = frozenset("arrives arrived arrive arriving city skyline town village exterior lands landed".split())

MOOD_WORDS: dict[str, str] = {}
for _mood, _words in {
    "tense": "creeps crept shadows shadow silence nervous nervously tense dread uneasy holds breath waits cautiously",
    "angry": "furious angry rage anger slams slammed glares glared shouts shouted yells yelled snarls snapped scowls",
    "sad": "cries cried tears weeps wept sobs sobbed grief sad sadly mourns lonely heartbroken despair",
    "happy": "laughs laughed smiles smiled grins grinned joy joyful cheerful delighted happy cheers giggles",
    "romantic": "kiss kisses kissed embrace embraces embraced caress blushes blushed tenderly lovingly",
    "fearful": "terrified afraid fear scream screams screamed trembles trembled panics panicked horrified frightened",
    "calm": "quiet quietly peaceful calm calmly softly gently serene still",
    "action": "explodes exploded explosion battle fight fights punches punched kicks kicked attacks attacked chase",
    "mysterious": "mysterious strange fog mist whispers secret hooded",
}.items():
    for _w in _words.split():
        MOOD_WORDS.setdefault(_w, _mood)

# ----------------------------------------------------------------------------- names

ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr prof capt lt col gen sgt rev mt vs etc e.g i.e approx no fig inc ltd co "
    "sen gov pres mme mlle messrs".split()
)
TITLES_HE = frozenset(
    {"Mr", "Sir", "Lord", "King", "Prince", "Father", "Brother", "Uncle", "Señor", "Monsieur", "Herr"}
)
TITLES_SHE = frozenset(
    {"Mrs", "Ms", "Miss", "Lady", "Queen", "Princess", "Mother", "Sister", "Aunt", "Madame", "Señora", "Frau", "Mme"}
)

# Ranks and roles written before a name ("Captain Elias Grey"): a title, not part of the name, and
# no gender. "Captain Elias Grey", "Elias" and "Grey" are then one person.
TITLES_NEUTRAL = frozenset(
    """Captain Capt Sergeant Sgt Lieutenant Lt Colonel Col General Gen Major Commander Cmdr Admiral
    Detective Det Inspector Constable Officer Agent Doctor Dr Professor Prof Judge Chief Nurse Coach
    Private Corporal Cpl Marshal Sheriff Deputy Governor Senator President Mayor Reverend Rev""".split()
)

# Camera directions that open script panel descriptions ("Wide shot of…", "Extreme close-up of…",
# "Establishing: the harbour"): capitalised, at a sentence start, never names.
SHOT_WORDS = frozenset(
    """establishing wide medium close closeup close-up extreme tight long aerial overhead angle angles pan
    insert inset splash reverse pov ots shot shots panel page pages caption sfx""".split()
)

# Words that open a sentence before its subject without a comma ("Sometimes Theo sang", "On Monday
# Theo came home"): never part of a name, and skipped when looking for the subject.
OPENERS = frozenset(
    """sometimes often once always usually later soon afterwards yesterday today tonight tomorrow
    meanwhile eventually perhaps maybe instead besides somehow otherwise anyway still again
    on in at after before during beside behind near by under over with without across through since
    until inside outside above below beyond around among along upon every each last next that this
    one young old little poor dear""".split()
)

# Family words: a name only where the text uses one as a name, capitalised mid-sentence with no
# possessive before it ("Theo hugged Dad", not "Dad was late." alone nor "his Dad").
KINSHIP = frozenset(
    """mom mum mommy mummy mama mamma ma dad daddy papa pa pop father mother grandma grandpa granny
    grandad granddad gran nana nan grandmother grandfather auntie aunty uncle aunt sis bro son
    daughter""".split()
)

KINSHIP_HE = frozenset("dad daddy papa pa pop father grandpa grandad granddad grandfather uncle bro son".split())
KINSHIP_SHE = frozenset(
    "mom mum mommy mummy mama mamma ma mother grandma granny gran nana nan grandmother auntie aunty aunt sis daughter".split()
)

# Capitalised words that are never character names (sentence starters, function words, etc.).
STOPWORDS = frozenset(
    """i a an the this that these those there then when while where why how what who whom whose
    which he she it they we you him her them us me my your his its our their hers theirs mine
    yours ours and but or nor so yet for if as at by in on of to up with from into onto over
    under after before later meanwhile suddenly finally still just now here not no yes oh ah
    well okay ok hello hi hey goodbye bye please thanks thank sorry dear god lord sir madam
    mr mrs ms dr miss st chapter scene part int ext act prologue epilogue the end maybe perhaps
    again once twice every each all some any none both either neither one two three four five
    six seven eight nine ten first second third last next soon today tomorrow yesterday
    tonight morning evening night noon dawn dusk somewhere nowhere everyone someone nobody
    everybody something nothing everything outside inside behind beside beneath above below
    across through around without within although though because since until unless whether
    do does did don't can't won't didn't isn't wasn't aren't weren't i'm i'll i've i'd it's
    that's there's what's let's you're we're they're he's she's come go look stop wait run
    listen help no-one christmas easter somebody anybody anyone anything everything nobody
    neither whoever whatever wherever whenever meanwhile afterwards later earlier suddenly
    slowly quietly finally perhaps maybe everyone someone""".split()
)

SCENE_NOUNS = frozenset(
    # Things that open narration sentences before a verb ("Light fell…", "Rain hammered…") and would
    # otherwise pass for a one-off name: weather, light, sound, elements, time, crowds.
    """light sunlight moonlight starlight lamplight darkness shadow shadows rain snow wind fog mist
    smoke fire flames water waves thunder lightning silence noise music dust steam ice frost heat
    cold sun moon stars sky clouds storm hail sleet dawn twilight time days weeks months years hours
    minutes seconds footsteps voices laughter screams blood tears glass doors door windows window
    nobody everyone people crowds crowd birds dogs trees leaves grass flowers snowflakes sparks
    echoes bells sirens engines cars boats ships trains planes morning evening""".split()
)

KNOWN_PLACES = frozenset(
    """london paris rome berlin madrid lisbon vienna prague warsaw kraków krakow moscow tokyo kyoto
    beijing shanghai delhi mumbai cairo lagos nairobi sydney melbourne toronto vancouver montreal
    chicago boston seattle york brooklyn manhattan california texas florida england scotland wales
    ireland france spain italy germany poland russia china japan india egypt brazil mexico canada
    america africa europe asia australia venice florence naples athens istanbul dublin edinburgh
    amsterdam brussels oslo stockholm copenhagen helsinki zurich geneva barcelona seville porto
    hollywood forks seattle""".split()
)
PLACE_SUFFIXES = frozenset(
    "Street Avenue Road Lane Square Park River Lake Mountain Mountains City Station Hotel Bridge "
    "Hall Castle Tower Island Bay Harbour Harbor Church Cathedral Palace Forest Valley Hill "
    "Street. Ave Rd Boulevard Market Academy School University College Hospital".split()
)

VERB_BASES = frozenset(_ACTION_BASES) | frozenset(_IRREGULAR)
"""Bare verb forms: after "and", a bare form only continues a clause whose verb is bare too
("they walk and talk"), which keeps "eats bread and water" from splitting at "water"."""
IRREGULAR_PAST = frozenset(f for v in _IRREGULAR.values() for f in v.split())
