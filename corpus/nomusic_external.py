"""An external no_music test set: voices, effects and ambience of packages that train nothing.

    python -m corpus.nomusic_external OUT_DIR [--score-set /work/external]
    python -m corpus.nomusic OUT_DIR --external               # the same

The clips are made exactly as the training corpus's no_music clips (:mod:`corpus.nomusic`:
speech alone, effects, ambience, speech over effects / ambience, and the same speech over
score at -20..+10 dB re the speech, label score), but every source is a Debian package that
no training source comes from, and the music under speech is the score of the external real
set (``corpus.external``, its ``manifest.csv`` score rows). ``group`` is the clip's source
package(s): there are no cells, this set only tests.

Packages already downloaded for the external score set (``--score-set``) are linked, not
downloaded again. The voices: June Wallack (fr_CA, asterisk-core-sounds-fr-wav), Armelle
(French, asterisk-prompt-fr-armelle), a Colombian Spanish speaker (asterisk-prompt-es-co),
KLettres' letters and syllables read in eight of its 20 languages (klettres-data: one voice
per language folder; how many people they are is not known) and SuperTux's Tux (Penny's one
line is too short to be a voice; ``tux_rap`` is left out).
(asterisk-core-sounds-es-wav was left out: its voice is Allison Smith, a training voice.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path, PurePosixPath

from . import nomusic
from .build import log

#: Counts of the external set (``score_under_speech`` = the pairs).
COUNTS = {"no_music_speech": 60, "no_music_effects": 50, "no_music_ambience": 40,
          "no_music_speech_fx": 40}
PAIRS = {"no_music_speech": 45, "no_music_speech_fx": 25}
#: Default external score set (``python -m corpus.external``).
SCORE_SET = Path("/work/external")
#: KLettres reads letters and syllables in 20 languages (a voice each): eight of them, of
#: different scripts, and each with one turn per round where every other voice has three, so
#: that spelling drills do not make most of the speech.
KLETTRES = ("de", "en_GB", "es", "fr", "he", "hu", "ml", "ru")

_WS = "usr/share/games/wesnoth/1.16/data/core/sounds/"
_ST = "usr/share/games/supertux2/"
_SCR = "usr/share/scratch/Media/Sounds/"


def _klettres_voice(path: str) -> str:
    return f"klettres:{PurePosixPath(path).parts[-3]}"


def _supertux_voice(path: str) -> str:
    return f"supertux:{PurePosixPath(path).stem.split('_')[0]}"


SOURCES: list[dict] = [
    # ------------------------------------------------------------------------- voices
    dict(package="asterisk-core-sounds-fr-wav", role="voice", licence="CC-BY-SA-3.0",
         glob="usr/share/asterisk/sounds/fr_CA_f_June/**/*.wav", exclude=r"/silence/",
         author="June Wallack (Digium)", voice=lambda p: "asterisk-fr:June"),
    dict(package="asterisk-prompt-fr-armelle", role="voice", licence="GPL-2+",
         glob="usr/share/asterisk/sounds/fr/**/*.gsm", author="Armelle (Michel Gutierrez)",
         voice=lambda p: "asterisk-fr:Armelle"),
    dict(package="asterisk-prompt-es-co", role="voice", licence="GPL-2",
         glob="usr/share/asterisk/sounds/es/**/*.gsm", author="Avatar Ltda. / July E. Jimenez",
         voice=lambda p: "asterisk-es-co"),
    dict(package="klettres-data", role="voice", licence="GPL-2+",
         glob=["usr/share/klettres/*/alpha/*.ogg", "usr/share/klettres/*/syllab/*.ogg"],
         author="KLettres contributors (KDE)", voice=_klettres_voice),
    dict(package="supertux-data", role="voice", licence="GPL-3+ (debian/copyright, Files: *)",
         glob=_ST + "speech/*.ogg", exclude=r"tux_rap", author="SuperTux team",
         voice=_supertux_voice),
    # ------------------------------------------------------------------------- effects
    dict(package="wesnoth-1.16-data", role="effects", licence="GPL-2+",
         glob=[_WS + "*.ogg", _WS + "*.wav"], author="The Battle for Wesnoth contributors",
         excluded={
             r"/(human|dwarf|elf|orc|goblin|troll|ogre|naga|mermaid|mermen|lich|ghoul|zombie)-[^/]*$"
             r"|/(groan|ugg|wail[^/]*|dwarf-laugh)\.wav$": "voice: the units' cries, groans and laughs",
         }),
    dict(package="supertux-data", role="effects", licence="GPL-3+ (debian/copyright, Files: *)",
         glob=[_ST + "sounds/*.wav", _ST + "sounds/*.ogg"], author="SuperTux team",
         excluded={r"/(excellent|welldone|grunts|yeti_gna)\.\w+$": "voice: spoken praise, grunts",
                   r"/(lifeup|invincible_start|savebell\w*|coins_cleared)\.\w+$": "music: jingles and bells"}),
    dict(package="extremetuxracer-data", role="effects", licence="GPL-2+",
         glob="usr/share/games/etr/sounds/*.wav", author="Extreme Tux Racer team"),
    dict(package="scratch", role="effects", licence="CC-BY-SA-3.0 (Media/*)",
         glob=[_SCR + "Effects/*", _SCR + "Animal/*", _SCR + "Electronic/*",
               _SCR + "Human/FingerSnap.wav", _SCR + "Human/Footsteps-*", _SCR + "Human/Slurp.mp3"],
         author="MIT Scratch team",
         excluded={r"/BellToll\.wav$": "music: a tolling bell (pitched, rung)"}),
    dict(package="tuxpaint-data", role="effects", licence="GPL-2+",
         glob="usr/share/tuxpaint/sounds/*.wav", author="Tux Paint team",
         excluded={r"/(areyousure|youcannot|tuxok|giggle)\.wav$": "voice: Tux speaking, a giggle",
                   r"/harp\.wav$": "music: a harp glissando"}),
    dict(package="pingus-data", role="effects", licence="GPL-2+",
         glob="usr/share/games/pingus/data/sounds/*.wav", author="Pingus team (Ingo Ruhnke et al.)",
         excluded={r"/(goodidea|letsgo|ohno|yipee)\.wav$": "voice: the pingus' exclamations"}),
    # ------------------------------------------------------------------------- ambience
    # Wesnoth's ambient loops are birdsong, insects, a campfire, a ship: not music by the label
    # policy, though birdsong is pitched, so they skip the pitch screen (wardrums is music).
    dict(package="wesnoth-1.16-data", role="ambience", licence="GPL-2+",
         glob=_WS + "ambient/*.ogg", author="The Battle for Wesnoth contributors", screen=False,
         screen_note="nature ambience (birds, insects, fire, a ship): not screened",
         excluded={r"/wardrums\.ogg$": "music: war drums"}),
    dict(package="supertux-data", role="ambience", licence="GPL-3+ (debian/copyright, Files: *)",
         glob=[_ST + f"sounds/{n}.wav" for n in ("rain", "waterfall", "lava", "flame", "ticking")],
         author="SuperTux team"),
    dict(package="scratch", role="ambience", licence="CC-BY-SA-3.0 (Media/*)",
         glob=[_SCR + n for n in ("Animal/Crickets.wav", "Effects/WaterRunning.mp3", "Human/PartyNoise.wav",
                                  "Effects/SewingMachine.mp3", "Effects/Typing.mp3", "Effects/Bubbles.wav")],
         author="MIT Scratch team"),
    dict(package="extremetuxracer-data", role="ambience", licence="GPL-2+",
         glob=[f"usr/share/games/etr/sounds/{n}_slide.wav" for n in ("snow", "ice", "rock", "grass")],
         author="Extreme Tux Racer team"),
]


def _link_debs(out: Path, score_set: Path, packages: set[str]) -> None:
    """Reuse the external score set's downloads: link its .debs into ``out/debs``."""
    (out / "debs").mkdir(parents=True, exist_ok=True)
    for pkg in sorted(packages):
        if list((out / "debs").glob(f"{pkg}_*.deb")):
            continue
        for deb in sorted((score_set / "debs").glob(f"{pkg}_*.deb"))[-1:]:
            (out / "debs" / deb.name).symlink_to(deb.resolve())


def build_external(out: Path, *, jobs: int = 2, seed: int = 12, force: bool = False,
                   score_set: Path | None = None, counts=None, pairs=None) -> dict:
    t0 = time.time()
    score_set = SCORE_SET if score_set is None else score_set
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    fetched: dict = {}
    _link_debs(out, score_set, {s["package"] for s in SOURCES})
    log("[1/4] inventory (downloads what is missing)")
    vinv, dropped = nomusic.inventory(out, [s for s in SOURCES if s["role"] == "voice"], problems, fetched)
    inv, more = nomusic.inventory(out, [s for s in SOURCES if s["role"] != "voice"], problems, fetched)
    dropped += more
    voices = {v: ps for v, ps in nomusic.voices_of(vinv).items()
              if sum(vinv[p]["duration"] for p in ps) >= 4.0
              and (not v.startswith("klettres:") or v.split(":")[1] in KLETTRES)}
    log("[2/4] music screen")
    nomusic.apply_screen(out, inv, dropped, jobs)
    for d in dropped:
        if d["by"] != "duration":
            log(f"  excluded {d['path']} ({d['by']}): {d['why']}")
    music = nomusic.music_pool(score_set / "manifest.csv", score_set, lambda r: "ext",
                               prefixes=("pkgs/", "gen/"))
    log("[3/4] planning")
    units = nomusic.plan(voices=voices, voice_cell={v: "ext" for v in voices}, inv=inv,
                         cell_of_pkg={m["package"]: "ext" for m in inv.values()}, music=music,
                         counts=dict(COUNTS if counts is None else counts),
                         pairs=dict(PAIRS if pairs is None else pairs), seed=seed,
                         turns={v: 1 if v.startswith("klettres:") else 3 for v in voices})
    voice_meta = {v: {k: vinv[ps[0]][k] for k in ("package", "version", "licence", "author")}
                  for v, ps in voices.items()}
    log(f"[4/4] rendering {len(units)} units")
    rows, render_problems = nomusic.run(out, units, group_of=lambda u: None, voice_meta=voice_meta,
                                        jobs=jobs, force=force)
    problems += render_problems
    summary = nomusic.summarise(rows, problems, dropped, time.time() - t0, seed=seed,
                                packages={p: v for p, (_, v) in sorted(fetched.items())},
                                score_set=str(score_set),
                                voice_seconds={v: round(sum(vinv[p]["duration"] for p in ps), 1)
                                               for v, ps in sorted(voices.items())})
    nomusic.write_outputs(out, rows, summary, "manifest.csv", "summary.json")
    log(json.dumps({k: summary[k] for k in ("clips", "by_label", "by_kind", "seconds")}, indent=1))
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpus.nomusic_external", description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--score-set", type=Path, default=SCORE_SET)
    a = ap.parse_args(argv)
    s = build_external(a.out, jobs=a.jobs, seed=a.seed, force=a.force, score_set=a.score_set)
    return 0 if s["clips"] else 1


if __name__ == "__main__":
    sys.exit(main())
