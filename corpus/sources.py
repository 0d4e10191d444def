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
