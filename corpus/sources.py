"""Declarative list of the training corpus's sources (Debian packages).

Each source names its package, the licence (as the package's copyright file states it),
where its audio lives inside the extracted package, and what role it plays:

- ``score``: instrumental music tracks, cut into excerpts (label score);
- ``stems``: sample-aligned backing + lead-guitar stems (score_rock, plus guitar-up remixes);
- ``voice``: spoken phrases, grouped into voices, turned into singing (song) and laid over
  backings as dialogue (score_speech);
- ``singer``: real sung phrases (song);
- ``narration``: real narration over a drone (score_speech as is);
- ``choir_sample``: short wordless voice textures, layered into choir pads (score_choir).

Only these sources train the shipped model, so evaluation on anything else stays honest.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

#: Tracks whose whole excerpt set is tagged score_choir (choir / wordless voice heard).
CHOIR_TRACKS = {
    "wesnoth-1.16-music": {"battle-epic", "transience", "heroes_rite", "elvish-theme"},
    "ufoai-music": {"Crystan-WinGame", "van_mission3"},
    "hyperrogue-music": {"hr-domina-mountain"},
}
#: Pop/rock/metal instrumentals tagged score_rock.
ROCK_TRACKS = {
    "hedgewars-data": {"Rock", "Castle", "City", "Compost", "Brick", "pirate", "bath"},
    "colobot-common-sounds": {"music013"},
}


def _stem(path: str) -> str:
    return PurePosixPath(path).stem


def _ufoai_author(path: str) -> str:
    name = _stem(path)
    m = re.match(r"(Crystan|David|Marine|Psymong|TheThings|karlmacklin|van|AlexF)", name)
    return m.group(1) if m else "ufoai-various"


def _wz_author(path: str) -> str:
    return "Martin Severn" if "original_soundtrack" in path else "LupusMechanicus"


def _hyperrogue_author(path: str) -> str:
    name = _stem(path)
    if name.startswith("hr-domina"):
        return "Shawn Domina"
    if name.startswith("hr-savino"):
        return "Lincoln Savino"
    return "Will Savino"


def _fillets_voice(path: str) -> str:
    # sound/<level>/nl/<lvl>-<who>-<word>.ogg: 'm' and 'v' are the two fish heroes,
    # every other code is a level's own character.
    p = PurePosixPath(path)
    who = p.stem.split("-")[1] if p.stem.count("-") >= 2 else "x"
    if who in ("m", "v"):
        return f"fillets-nl:{who}"
    return f"fillets-nl:{p.parts[-3]}:{who}"


def _hedgewars_voice(path: str) -> str:
    return f"hedgewars:{PurePosixPath(path).parts[-2]}"


SOURCES: list[dict] = [
    # --- score -----------------------------------------------------------------------
    dict(package="wesnoth-1.16-music", role="score", licence="GPL-2+",
         glob="usr/share/games/wesnoth/1.16/data/core/music/*.ogg", author="Wesnoth composers",
         min_duration=20.0),
    dict(package="ufoai-music", role="score",
         licence="CC-BY-3.0 / CC-BY-SA-3.0 / GPL-2 / public domain (per file, see copyright)",
         archive="usr/share/games/ufoai/base/0music.pk3", glob="music/*.ogg", author=_ufoai_author,
         exclude=r"dynamictest", min_duration=20.0),
    dict(package="warzone2100-music", role="score", licence="GPL-2+ / CC-BY-SA-3.0+",
         glob="usr/share/games/warzone2100/music/albums/*/*.opus", author=_wz_author,
         min_duration=20.0),
    dict(package="singularity-music", role="score", licence="CC-BY-SA-3.0",
         glob="usr/share/games/singularity/music/**/*.ogg", author="Singularity composers",
         min_duration=20.0),
    dict(package="colobot-common-sounds", role="score", licence="GPL-3+",
         glob="usr/share/games/colobot/music/*.ogg", author="Colobot composers", min_duration=20.0),
    dict(package="hyperrogue-music", role="score", licence="CC-BY-SA-3.0",
         glob="usr/share/hyperrogue/music/*.ogg", author=_hyperrogue_author, min_duration=20.0),
    dict(package="pushover-data", role="score", licence="GPL-3+",
         glob="usr/share/pushover/themes/*.ogg", author="Pushover composers", min_duration=20.0),
    dict(package="planetblupi-music-ogg", role="score", licence="GPL-3+",
         glob="usr/share/planetblupi/music/*.ogg", author="Planet Blupi composers", min_duration=20.0),
    dict(package="freedroidrpg-data", role="score", licence="GPL-2+",
         glob="usr/share/freedroidrpg/data/sound/music/*.ogg", author="FreedroidRPG composers",
         min_duration=20.0),
    dict(package="hedgewars-data", role="score", licence="GPL-2",
         glob="usr/share/games/hedgewars/Data/Music/*.ogg", author="Hedgewars composers",
         min_duration=20.0),
    # --- instrumental stems ------------------------------------------------------------
    dict(package="fretsonfire-songs-muldjord", role="stems", licence="CC-BY-SA-3.0",
         glob="usr/share/games/fretsonfire/data/songs/muldjord/*/song.ogg", author="Lars Muldjord"),
    # --- real narration over a drone -----------------------------------------------------
    dict(package="freedroidrpg-data", role="narration", licence="GPL-2+",
         glob=["usr/share/freedroidrpg/data/base/titles/*.ogg",
               "usr/share/freedroidrpg/data/storyline/act1/titles/*.ogg"],
         author="FreedroidRPG voice actors"),
    # --- real voices ---------------------------------------------------------------------
    dict(package="hedgewars-data", role="singer", licence="GFDL-1.3",
         glob="usr/share/games/hedgewars/Data/Sounds/voices/Singer/*.ogg", author="Hedgewars Singer",
         voice=_hedgewars_voice),
    dict(package="hedgewars-data", role="voice", licence="GFDL-1.3",
         glob="usr/share/games/hedgewars/Data/Sounds/voices/*/*.ogg", exclude=r"/Singer/",
         author="Hedgewars voice actors", voice=_hedgewars_voice),
    dict(package="fillets-ng-data-nl", role="voice", licence="GPL-2+",
         glob="usr/share/games/fillets-ng/sound/*/nl/*.ogg", author="Fish Fillets NG Dutch cast",
         voice=_fillets_voice),
    dict(package="asterisk-core-sounds-en-wav", role="voice", licence="CC-BY-SA-3.0",
         glob="usr/share/asterisk/sounds/en_US_f_Allison/**/*.wav", exclude=r"/silence/",
         author="Allison Smith (Digium)", voice=lambda p: "asterisk:Allison"),
    # --- wordless choir textures -------------------------------------------------------------
    dict(package="sonic-pi-samples", role="choir_sample", licence="CC0-1.0",
         glob="usr/share/sonic-pi/samples/ambi_choir.flac", author="Sonic Pi samples"),
    # tbd_voctone, named in the corpus issue, is not in 3.2.2~repack-8; ambi_choir is the only
    # wordless-voice sample there.
]


#: How a song's lead vocal is made: the manifest's ``generator``. Leave-one-generator-out
#: evaluation (:mod:`corpus.generator_eval`) holds each one out in turn.
GENERATORS = {
    "speech2sing_v1": "real speech sung on a melody with WORLD, vibrato on every note (corpus v1)",
    "speech2sing_v2": "real speech sung with WORLD, re-parameterised from measured real singing",
    "rap": "real speech cut at syllables, placed densely on the backing's sixteenth grid",
    "sinsy": "Sinsy HMM singing synthesiser (a real singer's model) on music21 melodies",
    "singer": "the real sung phrases of hedgewars' Singer voice pack, transposed",
}

#: Python packages (PyPI) that the ``sinsy`` generator takes its voice and melodies from;
#: the manifest records their versions and licences on every clip they made.
SYNTH_SOURCES: list[dict] = [
    dict(package="pysinsy", role="singing_synthesiser", index="PyPI (sdist)",
         licence="pysinsy MIT; Sinsy + hts_engine Modified BSD; HTS voice nitech_jp_song070_f001 CC-BY-3.0",
         author="Ryuichi Yamamoto (pysinsy); Nagoya Institute of Technology (Sinsy, voice)"),
    dict(package="music21", role="melodies", index="PyPI",
         licence="BSD-3-Clause; corpus: Bach chorale melodies (public domain) and Essen folk songs "
                 "(traditional; encodings distributed for non-commercial use)",
         author="music21 authors; Essen encodings E. Dahlig-Turek, ABC by S. Schlien"),
]


def kind_of(package: str, path: str) -> str:
    """Manifest kind of an excerpt of a score track."""
    name = _stem(path)
    if name in CHOIR_TRACKS.get(package, ()):
        return "score_choir"
    if name in ROCK_TRACKS.get(package, ()):
        return "score_rock"
    return "score"


# ----------------------------------------------------------------------------- no_music
# The third class, no_music (issue 12): no music audible (speech alone, sound effects,
# ambience, room tone). Built by :mod:`corpus.nomusic` from the same packages as above (the
# voices are the ``voice`` sources above, the Singer left out) plus their sound-effect folders.
# Roles:
#
# - ``effects``: one-shot sound effects, strung into 20-s sequences;
# - ``ambience``: loops and steady sounds (engines, machines, fire, rain, hiss), looped into
#   20-s beds.
#
# ``excluded`` maps a regular expression (searched in the path) to the reason the files it
# matches are left out *by name*: voices (no_music effects must not hold speech) and music
# (jingles, notes, chants). Every remaining file also goes through a pitch analysis
# (``corpus.nomusic.screen``) that drops melodic phrases and chimes; both lists are written
# to ``summary.nomusic.json``.

#: Colobot names its sounds by number; the enum of colobot/src/sound/sound_type.h gives the
#: meaning (index = file number).
COLOBOT_SOUNDS = (
    "CLICK", "BOUM landing bump", "EXPLO building explosion", "FLYh jet landing", "FLY jet engine",
    "STEPs step on grass", "MOTORw wheeled bot engine", "MOTORt tracked bot engine",
    "MOTORr special bot engine", "ERROR message", "CONVERT converter", "ENERGY recharging",
    "PLOUF water splash", "BLUP swimming", "WARNING message", "DERRICK digging", "LABO lab",
    "STATION recharging", "REPAIR", "RESEARCH processing", "INSECTs spider roar", "BURN burning",
    "TZOING EPSITEC brand", "GGG electricity", "MANIP mechanic arm", "FIRE shooter",
    "HUMAN1 astronaut breathing", "STEPw step under water", "SWIM", "RADAR ding",
    "BUILD building", "ALARM energy alarm", "SLIDE winged bot engine", "EXPLOi insect scream",
    "INSECTa ant roar", "INSECTb wasp roar", "INSECTw worm roar", "INSECTm queen roar",
    "TREMBLE building ambient", "PSHHH", "NUCLEAR plant", "INFO message", "OPEN converter",
    "CLOSE converter slam", "FACTORY", "EGG eggshell", "MOTORs subber engine",
    "MOTORi legged bot engine", "SHIELD", "FIREi orga shooter", "GUNDEL", "PSHHH2",
    "MESSAGE", "BOUMm metal bang", "BOUMv plant bang", "BOUMs smooth bang", "EXPLOl bot explosion",
    "EXPLOlp power explosion", "EXPLOp explosion", "STEPh step on rock", "STEPm step on rock",
    "POWERON", "POWEROFF", "AIE astronaut pain", "WAYPOINT", "RECOVER recycler",
    "DEADi insect dying scream", "JOSTLE leaf shaking", "GFLAT ground probing",
    "DEADg astronaut death", "DEADw astronaut drowning", "FLYf jet overheating",
    "ALARMt temperature alarm", "FINDING vault opening", "THUMP thumper", "TOUCH bot damage",
    "BLITZ thunder", "MUSHROOM poisoning", "FIREp phazer", "EXPLOg1", "EXPLOg2",
    "MOTORd toy bot engine",
)

_HW_SOUNDS = "usr/share/games/hedgewars/Data/Sounds/"
_CB_SOUNDS = "usr/share/games/colobot/sounds/"
_HR_SOUNDS = "usr/share/hyperrogue/sounds/"
_FD_SOUNDS = "usr/share/freedroidrpg/data/sound/effects/"
_SP_SAMPLES = "usr/share/sonic-pi/samples/"

#: File names of no_music sources that say music whatever the package (case-insensitive).
MUSIC_NAMES = r"(?i)/[^/]*(victory|music|theme|jingle|fanfare|stinger|tada|level_?up|game_won|game_lost)[^/]*$"

#: hyperrogue's sounds/credits.txt: who made each sound and under which licence (the
#: package's debian/copyright says GPL-2+ for Files: *, which covers the rest).
_HR_CREDITS = {
    ("Brett Cornwall (Hydra Slayer)", "CC-BY-SA-4.0"): (
        "seen-eagle seen-sandworm seen-snake seen-dragon seen-skeleton seen-air seen-earth "
        "die-vinebeast die-vinespirit die-troll die-bomberbird hit-sword1 hit-sword2 hit-sword3 "
        "hit-axe1 hit-axe2 hit-axe3 hit-crush1 hit-crush2 hit-crush3 hit-rose pickup-gold "
        "pickup-winter pickup-potion pickup-scroll pickup-gem pickup-speed pickup-discord "
        "pickup-orb pickup-key pickup-yendor orb-teleport orb-mind orb-ranged tada necromancy "
        "fire storm"),
    ("Zeno Rogue", "CC-BY-SA-4.0"): "seen-woof",
    ("freesound.org contributors (credits.txt)", "CC0-1.0"): (
        "seen-troll seen-kraken explosion orb-frog mousesqueak click pickup-mirror message-roar "
        "opengate steamhiss seen-frog1 seen-frog2 seen-frog3 elementalgem die-kraken"),
    ("freesound.org contributors (credits.txt)", "CC-BY-3.0"): (
        "trapdoor nervous splash2 splash1 seen-water seen-ghost closegate message-troll "
        "hit-orbsword bull apple levelup"),
}
_HR_CREDIT_OF = {stem: ab for ab, stems in _HR_CREDITS.items() for stem in stems.split()}


def _hr_sfx_author(path: str) -> str:
    return _HR_CREDIT_OF.get(_stem(path), ("Zeno Rogue (HyperRogue)", ""))[0]


def _hr_sfx_licence(path: str) -> str:
    return _HR_CREDIT_OF.get(_stem(path), ("", "GPL-2+ (debian/copyright, Files: *)"))[1]


def _hw_sfx_licence(path: str) -> str:
    # debian/copyright: Data/Sounds/* GFDL-1.3, Droplet*.ogg CC-BY-SA-3.0 (saugox, freesound)
    return "CC-BY-SA-3.0" if _stem(path).startswith("Droplet") else "GFDL-1.3"


def _colobot_names(*numbers: int) -> str:
    return "|".join(f"sound{n:03d}" for n in numbers)


NOMUSIC_SOURCES: list[dict] = [
    dict(package="hedgewars-data", role="effects", licence=_hw_sfx_licence,
         glob=_HW_SOUNDS + "*.ogg", author="Hedgewars team (Droplet*: saugox)",
         excluded={
             r"/\d[A-G]\.ogg$": "music: single instrument notes named by their pitch (1C..9D)",
             r"ride_of_the_valkyries": "music: a Wagner excerpt",
             r"hogchant": "voices: a chant",
             r"/(Yoohoo|Kiss|Hellish|hell_\w+)\.ogg$": "voice: calls, kisses, laughs and grunts",
         }),
    dict(package="hedgewars-data", role="ambience", licence=_hw_sfx_licence,
         glob=[_HW_SOUNDS + f"{n}.ogg" for n in ("flamethrower", "minigun", "plane", "rcplane",
                                                   "bee", "steam", "blowtorch", "ice_beam_idle")],
         author="Hedgewars team"),
    dict(package="colobot-common-sounds", role="effects", licence="GPL-3+",
         glob=_CB_SOUNDS + "*.wav", author="Colobot (Daniel Roux, EPSITEC SA & TerranovaTeam)",
         excluded={
             _colobot_names(26, 63, 69, 70): "voice: the astronaut breathing, crying out, dying",
             _colobot_names(22): "music: EPSITEC's brand jingle (TZOING)",
         }),
    dict(package="colobot-common-sounds", role="ambience", licence="GPL-3+",
         glob=[_CB_SOUNDS + f"sound{n:03d}.wav" for n in (4, 6, 7, 8, 10, 15, 16, 17, 21, 32, 38,
                                                          40, 44, 46, 47, 71, 81)],
         author="Colobot (Daniel Roux, EPSITEC SA & TerranovaTeam)"),
    dict(package="hyperrogue-music", role="effects", licence=_hr_sfx_licence,
         glob=_HR_SOUNDS + "*.ogg", author=_hr_sfx_author,
         excluded={
             r"/(die|dzia|heal|hit|speak)-prince(ss)?\.ogg$|/(die|seen)-fairy\.ogg$"
             r"|/seen-(rosebeauty|gardener|necromancer|vizier|cultist\w*)\.ogg$":
                 "voice: recorded by Tehora Rogue, Zeno Rogue and KosGD (credits.txt)",
         }),
    dict(package="hyperrogue-music", role="ambience", licence=_hr_sfx_licence,
         glob=[_HR_SOUNDS + f"{n}.ogg" for n in ("storm", "steamhiss", "seen-water", "fire")],
         author=_hr_sfx_author),
    dict(package="freedroidrpg-data", role="effects", licence="GPL-2+",
         glob=_FD_SOUNDS + "**/*.ogg", author="FreedroidRPG team",
         excluded={
             r"/tux_ingame_comments/|/voice_samples/|/(First_Contact|Start_Attack)_Sound_":
                 "voice: Tux's comments and the droids' spoken lines",
             r"/(Influencer_Scream_Sound_\d|ThouArtDefeated_Sound_0)\.ogg$": "voice: screams, a spoken line",
             r"/(Takeover_Game_\w+|Mission_Status_Change_Sound_0)\.ogg$": "music: game-state jingles",
         }),
    # Sonic Pi's samples are mostly instruments, drum hits and loops (music): only the
    # recorded non-musical sounds are taken (README: all CC0 from freesound.org).
    dict(package="sonic-pi-samples", role="effects", licence="CC0-1.0",
         glob=[_SP_SAMPLES + f"{n}.flac" for n in ("misc_crow", "misc_cineboom", "perc_door",
                                                    "perc_impact1", "perc_impact2", "perc_swoosh",
                                                    "perc_swash", "perc_snap", "perc_snap2",
                                                    "perc_till", "ambi_swoosh", "ambi_dark_woosh")],
         author="Sonic Pi samples (freesound.org contributors)"),
    dict(package="sonic-pi-samples", role="ambience", licence="CC0-1.0",
         glob=[_SP_SAMPLES + f"{n}.flac" for n in ("vinyl_hiss", "ambi_sauna", "loop_3d_printer")],
         author="Sonic Pi samples (freesound.org contributors)"),
]
#: Not taken from sonic-pi-samples (music): drums, bass, elec_*, guit_*, tabla_*, loop_*
#: except loop_3d_printer, the ambi_* pads and hums (glass harp, drone, piano, choir),
#: bells, vinyl scratches (turntablism) and the mehackit phones and robot voices.
#: pushover-data holds no sound effects (only its theme music); fillets-ng-data-nl only voices.
