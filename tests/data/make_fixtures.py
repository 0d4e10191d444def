"""Cut the bundled test excerpts (CC-BY-SA-3.0 material only) from the built corpus.

    python tests/data/make_fixtures.py [CORPUS_DIR]   # corpus.build + corpus.nomusic output
"""
import sys
import soundfile as sf, soxr
from pathlib import Path
C = Path(sys.argv[1] if len(sys.argv) > 1 else '/work/corpus'); D = Path(__file__).resolve().parent
S = 'pkgs/fretsonfire-songs-muldjord/usr/share/games/fretsonfire/data/songs/muldjord'
items = [  # name, source, start, dur
 ('song_allison-sung-over-armygeddon.ogg', 'gen/song/00002.flac', 4.0, 10.0),
 ('song_allison-sung-over-chaos-god.ogg', 'gen/song/00122.flac', 4.0, 10.0),
 ('song_allison-a-cappella.ogg', 'gen/acappella/00002.flac', 4.0, 10.0),
 ('score_allison-speech-over-armygeddon.ogg', 'gen/speech/00002.flac', 4.0, 10.0),
 ('score_muldjord-chaos-god-guitar+12dB.ogg', 'gen/stems/chaos_god_guitar+12dB.flac', 60.0, 10.0),
 ('score_singularity-through-space.ogg', 'pkgs/singularity-music/usr/share/games/singularity/music/Through Space.ogg', 60.0, 10.0),
 ('score_hyperrogue-hr3-jungle.ogg', 'pkgs/hyperrogue-music/usr/share/hyperrogue/music/hr3-jungle.ogg', 30.0, 10.0),
 ('no_music_allison-speech.ogg', 'gen/nomusic/speech/00042.flac', 4.0, 10.0),
]
if len(sys.argv) > 2:  # only the named excerpts
    items = [it for it in items if it[0] in sys.argv[2:]]
for name, src, st, dur in items:
    info = sf.info(str(C / src))
    y, sr = sf.read(str(C / src), start=int(st * info.samplerate), frames=int(dur * info.samplerate), dtype='float32', always_2d=True)
    y = y.mean(1)
    if sr != 22050:
        y = soxr.resample(y, sr, 22050); sr = 22050
    sf.write(D / name, y, sr, format='OGG', subtype='VORBIS')
    print(name, (D / name).stat().st_size)
