"""``manus-speech-to-text``: offline speech recognition with PocketSphinx (US English).

Reads WAV (PCM, 8/16/24/32-bit, any sample rate, any number of channels) with the stdlib
``wave`` module and converts it to 16 kHz mono in Python (windowed-sinc resampling with
numpy). Other formats (MP3, FLAC, OGG…) are converted by ``ffmpeg`` or ``sox`` when one of
them is on PATH. Speech is split into utterances with PocketSphinx's voice-activity
segmenter and each utterance is decoded with the English model shipped in the wheel; nothing
is downloaded. The whole file is held in memory (about 4 bytes per input sample).

PocketSphinx is a small, fast, dated recognizer: fine for clear speech and keywords, weak on
noisy audio and uncommon words.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from openmanus_tui.utilities._cli import (
    EXIT_CODES_HELP,
    EXIT_OK,
    Failure,
    OneLineParser,
    UsageError,
    run_main,
)

if TYPE_CHECKING:
    import numpy as np

PROG = "manus-speech-to-text"
MODEL_RATE = 16000
FRAMES_PER_SECOND = 100  # PocketSphinx's default frame rate (-frate)
CONVERT_TIMEOUT = 600.0
SILENCE_RMS = 30.0  # about -60 dBFS on the int16 scale

# Decoder output that is not a word: sentence markers, silence, noise and filler tokens.
_NON_WORD = re.compile(r"^(<s>|</s>|<sil>|\[.*\]|\+\+.*\+\+)$")
_ALT_PRONUNCIATION = re.compile(r"\(\d+\)$")


@dataclass
class Word:
    word: str
    start: float
    end: float


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass
class Transcript:
    text: str
    duration: float
    segments: list[Segment]
    source_rate: int | None  # None when an external tool converted the file
    source_channels: int | None
    model: str = "pocketsphinx en-us"

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


# --- audio loading -------------------------------------------------------------------------


def _pcm_to_float(raw: bytes, width: int, channels: int) -> np.ndarray:
    """Decode interleaved little-endian PCM into a mono float array on the int16 scale."""
    import numpy as np

    if width == 1:  # 8-bit WAV is unsigned
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) * 256.0
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32)
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        samples = value.astype(np.float32) / 256.0
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 65536.0
    else:
        raise UsageError(f"unsupported WAV sample width: {width} bytes")
    usable = len(samples) - len(samples) % channels
    return samples[:usable].reshape(-1, channels).mean(axis=1)


def _kernel(dist: np.ndarray, cutoff: float, half: int, beta: float = 8.0) -> np.ndarray:
    """Kaiser-windowed sinc low-pass evaluated at ``dist`` input samples from the output."""
    import numpy as np

    window = np.i0(beta * np.sqrt(np.clip(1.0 - (dist / half) ** 2, 0.0, None))) / np.i0(beta)
    return cutoff * np.sinc(cutoff * dist) * window


def resample(samples: np.ndarray, rate_in: int, rate_out: int = MODEL_RATE) -> np.ndarray:
    """Band-limited resampling by Kaiser-windowed sinc interpolation.

    The filter spans 32 output-rate samples, so downsampling from 48 kHz uses 96 taps; its
    pass band ends at 90 % of the lower Nyquist frequency (7.2 kHz for 16 kHz output), which
    leaves room for the roll-off so content above 8 kHz cannot fold back into speech.
    For the usual rates the output positions cycle through a few hundred fractional phases
    (44.1 kHz -> 16 kHz: 160), so the filter is computed once per phase (polyphase).
    """
    import numpy as np

    if rate_in == rate_out or len(samples) == 0:
        return samples
    ratio = min(1.0, rate_out / rate_in)
    half = int(np.ceil(16 / ratio))
    cutoff = ratio * 0.9
    common = math.gcd(rate_in, rate_out)
    up, down = rate_out // common, rate_in // common
    n_out = len(samples) * up // down
    padded = np.concatenate(
        [np.zeros(half, np.float32), samples.astype(np.float32), np.zeros(half + 1, np.float32)]
    )
    offsets = np.arange(-half + 1, half + 1)
    table = None
    if up <= 4096:
        table = _kernel(np.arange(up)[:, None] / up - offsets[None, :], cutoff, half)
        table = table.astype(np.float32)
    out = np.empty(n_out, dtype=np.float32)
    chunk = max(1024, (1 << 20) // (2 * half))  # bounds the (chunk x taps) matrices to ~8 MB
    for start in range(0, n_out, chunk):
        m = np.arange(start, min(start + chunk, n_out), dtype=np.int64)
        base, phase = np.divmod(m * down, up)
        idx = base[:, None] + offsets[None, :]
        if table is not None:
            weights = table[phase]
        else:  # an unusual rate pair: evaluate the filter at every position
            weights = _kernel(phase[:, None] / up - offsets[None, :], cutoff, half)
        out[start : start + len(m)] = np.einsum("ij,ij->i", padded[idx + half], weights)
    return out


def _read_wav(path: Path) -> tuple[np.ndarray, int, int]:
    with wave.open(str(path), "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        raw = wav.readframes(wav.getnframes())
    if rate <= 0 or channels <= 0:
        raise UsageError(f"invalid WAV header in {path}")
    return _pcm_to_float(raw, width, channels), rate, channels


def _convert_with_tool(path: Path, out_wav: Path) -> bool:
    """Convert any audio file to 16 kHz mono WAV with ffmpeg or sox, if either exists."""
    if ffmpeg := shutil.which("ffmpeg"):
        cmd = [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(path),
               "-ac", "1", "-ar", str(MODEL_RATE), "-sample_fmt", "s16", str(out_wav)]  # fmt: skip
    elif sox := shutil.which("sox"):
        cmd = [sox, str(path), "-r", str(MODEL_RATE), "-c", "1", "-b", "16", str(out_wav)]
    else:
        return False
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CONVERT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Failure(f"audio conversion timed out after {CONVERT_TIMEOUT:.0f}s") from None
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise UsageError(f"cannot decode audio file {path}: {Path(cmd[0]).name}: {detail}")
    return True


def load_audio(path: Path) -> tuple[bytes, int | None, int | None, float]:
    """Return (16 kHz mono int16 PCM, source rate, source channels, duration in seconds).

    Rate and channels are ``None`` when ffmpeg/sox decoded the file.
    """
    import numpy as np

    if not path.exists():
        raise UsageError(f"audio file not found: {path}")
    if not path.is_file():
        raise UsageError(f"not a file: {path}")
    source_rate: int | None
    source_channels: int | None
    try:
        samples, rate, channels = _read_wav(path)
        source_rate, source_channels = rate, channels
    except (wave.Error, EOFError):
        # Not PCM WAV (MP3, FLAC, float WAV…): hand it to an external converter if present.
        with tempfile.TemporaryDirectory(prefix="manus-stt-") as tmp:
            converted = Path(tmp) / "audio.wav"
            if not _convert_with_tool(path, converted):
                raise UsageError(
                    f"{path} is not a PCM WAV file; install ffmpeg or sox to read other formats"
                ) from None
            samples, rate, _ = _read_wav(converted)
            source_rate = source_channels = None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    duration = len(samples) / rate
    mono = resample(samples, rate)
    pcm = np.clip(np.round(mono), -32768, 32767).astype("<i2").tobytes()
    return pcm, source_rate, source_channels, duration


# --- recognition ---------------------------------------------------------------------------


def _words(decoder: object, offset: float) -> list[Word]:
    words = []
    for seg in decoder.seg():  # type: ignore[attr-defined]
        token = _ALT_PRONUNCIATION.sub("", seg.word)
        if _NON_WORD.match(token):
            continue
        words.append(
            Word(
                word=token,
                start=round(offset + seg.start_frame / FRAMES_PER_SECOND, 2),
                end=round(offset + (seg.end_frame + 1) / FRAMES_PER_SECOND, 2),
            )
        )
    return words


def _rms(pcm: bytes) -> float:
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def transcribe_pcm(pcm: bytes) -> list[Segment]:
    """Recognise 16 kHz mono int16 PCM, one segment per detected utterance."""
    from pocketsphinx import Decoder, Segmenter

    decoder = Decoder(samprate=MODEL_RATE, loglevel="FATAL")
    utterances = [(u.start_time, u.end_time, u.pcm) for u in Segmenter(sample_rate=MODEL_RATE)
                  .segment(io.BytesIO(pcm))]  # fmt: skip
    if not utterances and _rms(pcm) > SILENCE_RMS:
        # Quiet recordings can slip under the voice detector; decode them whole instead
        # (but not silence, from which the decoder invents words).
        utterances = [(0.0, len(pcm) / 2 / MODEL_RATE, pcm)]
    segments = []
    for start, end, audio in utterances:
        decoder.start_utt()
        decoder.process_raw(audio, full_utt=True)
        decoder.end_utt()
        words = _words(decoder, start)
        if words:
            text = " ".join(w.word for w in words)
            segments.append(Segment(round(start, 2), round(end, 2), text, words))
    return segments


def transcribe(path: Path) -> Transcript:
    pcm, rate, channels, duration = load_audio(path)
    try:
        segments = transcribe_pcm(pcm)
    except (RuntimeError, ValueError) as exc:
        raise Failure(f"speech recognition failed: {exc}") from None
    return Transcript(
        text=" ".join(s.text for s in segments),
        duration=round(duration, 2),
        segments=segments,
        source_rate=rate,
        source_channels=channels,
    )


def _build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog=PROG,
        description="Transcribe English speech from an audio file, offline (PocketSphinx).",
        epilog="Reads PCM WAV natively; other formats need ffmpeg or sox on PATH. "
        + EXIT_CODES_HELP,
    )
    parser.add_argument("audio", type=Path, help="audio file (WAV; others via ffmpeg/sox)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON: text, duration, and segments with per-word times (seconds)",
    )
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = _build_parser().parse_args(argv)
    transcript = transcribe(args.audio)
    if args.json:
        print(transcript.to_json())
    else:
        if not transcript.text:
            print(f"{PROG}: warning: no speech recognised", file=sys.stderr)
        print(transcript.text)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
