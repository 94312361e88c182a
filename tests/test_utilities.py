"""The sandbox utilities ``manus-md-to-pdf`` and ``manus-speech-to-text``, run as real
commands (``python -m``) on real files; speech is synthesised with espeak-ng."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from openmanus_tui.utilities.speech_to_text import resample

RUN_TIMEOUT = 120  # seconds; each run takes one or two


def _run(module: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"openmanus_tui.utilities.{module}", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=cwd,
    )


# --- manus-md-to-pdf ------------------------------------------------------------------------


def _tiny_png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 8), (200, 30, 30)).save(path)


def _fonts_of(page) -> set[str]:
    fonts = page["/Resources"]["/Font"]
    return {str(fonts[name].get_object()["/BaseFont"]) for name in fonts}


MARKDOWN = """# Quarterly Report

Intro paragraph with *emphasis*.

| Fruit  | Count |
|--------|------:|
| apple  | 31 |
| quince | 47 |

```python
def greet(name):
    return f"hello {name}"
```

![chart](img/chart.png)

![gone](img/missing.png)
"""


def test_md_to_pdf_table_code_and_relative_image(tmp_path: Path) -> None:
    doc_dir = tmp_path / "docs"
    _tiny_png(doc_dir / "img" / "chart.png")
    (doc_dir / "report.md").write_text(MARKDOWN, encoding="utf-8")
    out_pdf = tmp_path / "out" / "report.pdf"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()

    # Run from another folder: the image path must resolve against the Markdown file's folder.
    proc = _run("md_to_pdf", str(doc_dir / "report.md"), str(out_pdf), cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "manus-md-to-pdf: warning: image not found: img/missing.png"

    assert out_pdf.read_bytes()[:5] == b"%PDF-"
    pdf = PdfReader(out_pdf)
    assert pdf.metadata.title == "Quarterly Report"
    text = "".join(page.extract_text() for page in pdf.pages)
    for expected in ("Quarterly Report", "Fruit", "quince", "47", "def greet(name):",
                     "[image: gone]"):
        assert expected in text
    first = pdf.pages[0]
    images = first.images
    assert len(images) == 1
    assert images[0].image.size == (12, 8)  # our PNG, at its own size
    # The table is drawn with cell borders, not just as loose text: grid lines are stroked.
    content = first.get_contents().get_data().decode("latin-1")
    assert content.count(" l S") + content.count(" re S") >= 4 or content.count(" l\n") >= 4
    # The code block is set in a monospaced font, the text in a sans font.
    fonts = _fonts_of(first)
    assert any("Mono" in f or "Courier" in f for f in fonts), fonts
    assert not list((tmp_path / "out").glob(".*partial"))


def test_md_to_pdf_errors(tmp_path: Path) -> None:
    missing = _run("md_to_pdf", str(tmp_path / "nope.md"), str(tmp_path / "x.pdf"))
    assert missing.returncode == 2
    assert (
        missing.stderr.strip()
        == f"manus-md-to-pdf: error: input file not found: {tmp_path}/nope.md"
    )
    assert not (tmp_path / "x.pdf").exists()

    no_args = _run("md_to_pdf")
    assert no_args.returncode == 2
    assert len(no_args.stderr.strip().splitlines()) == 1

    (tmp_path / "a.md").write_text("# hi\n", encoding="utf-8")
    bad_paper = _run("md_to_pdf", str(tmp_path / "a.md"), str(tmp_path / "a.pdf"), "--paper", "X9")
    assert (bad_paper.returncode, bad_paper.stderr.strip()) == (
        2,
        "manus-md-to-pdf: error: unknown paper size: 'X9'",
    )

    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    unwritable = _run("md_to_pdf", str(tmp_path / "a.md"), str(blocker / "a.pdf"))
    assert unwritable.returncode == 1
    assert unwritable.stderr.startswith("manus-md-to-pdf: error: cannot write")
    assert "Traceback" not in unwritable.stderr

    css = tmp_path / "style.css"
    css.write_text("body { font-size: 14pt; font-family: serif }\ntable { border-collapse: "
                   "collapse }\n", encoding="utf-8")
    styled = _run("md_to_pdf", str(tmp_path / "a.md"), str(tmp_path / "a.pdf"),
                  "--css", str(css), "--paper", "letter-L")
    assert styled.returncode == 0, styled.stderr
    assert styled.stderr.strip() == ("manus-md-to-pdf: warning: CSS not applied (unsupported): "
                                     "table { border-collapse }")
    page = PdfReader(tmp_path / "a.pdf").pages[0]
    assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (792, 612)
    assert any("Serif" in f or "Times" in f for f in _fonts_of(page))

    helped = _run("md_to_pdf", "--help")
    assert helped.returncode == 0
    assert "Markdown" in helped.stdout


# --- manus-speech-to-text -------------------------------------------------------------------


def _tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (10000 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _level_at(signal: np.ndarray, rate: int, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    freqs = np.fft.rfftfreq(len(signal), 1 / rate)
    return float(spectrum[np.argmin(np.abs(freqs - freq))])


# 44101 Hz has no small common divisor with 16 kHz: the per-position (non-polyphase) path.
@pytest.mark.parametrize("rate_in", [8000, 22050, 44100, 44101, 48000])
def test_resample_keeps_speech_band_and_rejects_aliases(rate_in: int) -> None:
    out = resample(_tone(1000, rate_in), rate_in, 16000)
    assert abs(len(out) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(out[1000:-1000] * np.hanning(len(out) - 2000)))
    peak_hz = np.argmax(spectrum) * 16000 / (len(out) - 2000)
    assert abs(peak_hz - 1000) < 10
    # Amplitude of a 1 kHz tone is preserved within 2 %.
    assert abs(np.abs(out[1000:-1000]).max() / 10000 - 1) < 0.02
    if rate_in > 20000:
        # A 10 kHz tone cannot exist at 16 kHz; it must not fold back to 6 kHz.
        aliased = resample(_tone(10000, rate_in), rate_in, 16000)
        assert _level_at(aliased, 16000, 6000) < 0.01 * _level_at(out, 16000, 1000)


ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed")
# PocketSphinx recognises espeak-ng's digits reliably; longer prose much less so.
SENTENCE = "two three four five"
KEYWORDS = {"two", "three", "four", "five"}


def _speak(path: Path) -> None:
    subprocess.run(
        [ESPEAK or "espeak-ng", "-v", "en-us", "-w", str(path), SENTENCE],
        check=True,
        timeout=60,
        capture_output=True,
    )


def _stereo_24bit(src: Path, dst: Path) -> None:
    with wave.open(str(src), "rb") as wav:
        rate = wav.getframerate()
        mono = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int32)
    samples = mono << 8  # 16-bit -> 24-bit scale
    stereo = np.stack([samples, samples // 2], axis=1).reshape(-1)
    raw = stereo.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    with wave.open(str(dst), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(3)
        out.setframerate(rate)
        out.writeframes(raw)


@needs_espeak
def test_speech_to_text_recognises_synthesised_speech(tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    _speak(wav)
    proc = _run("speech_to_text", str(wav), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    words = result["text"].split()
    assert len(KEYWORDS & set(words)) >= 3, result["text"]
    assert result["source_rate"] == 22050
    assert result["source_channels"] == 1
    timed = [w for seg in result["segments"] for w in seg["words"]]
    assert [w["word"] for w in timed] == words
    starts = [w["start"] for w in timed]
    assert starts == sorted(starts)
    assert all(0 <= w["start"] < w["end"] <= result["duration"] + 0.1 for w in timed)

    plain = _run("speech_to_text", str(wav))
    assert plain.returncode == 0
    assert plain.stdout.strip() == result["text"]


@needs_espeak
def test_speech_to_text_reads_stereo_24bit_wav(tmp_path: Path) -> None:
    mono = tmp_path / "mono.wav"
    _speak(mono)
    stereo = tmp_path / "stereo24.wav"
    _stereo_24bit(mono, stereo)
    proc = _run("speech_to_text", str(stereo), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["source_channels"] == 2
    assert len(KEYWORDS & set(result["text"].split())) >= 3, result["text"]


def test_speech_to_text_errors(tmp_path: Path) -> None:
    missing = _run("speech_to_text", str(tmp_path / "none.wav"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"manus-speech-to-text: error: audio file not found: {tmp_path}/none.wav"
    )
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio", encoding="utf-8")
    garbage = _run("speech_to_text", str(not_audio))
    assert garbage.returncode == 2
    assert garbage.stderr.startswith("manus-speech-to-text: error: ")
    assert len(garbage.stderr.strip().splitlines()) == 1
    assert "Traceback" not in garbage.stderr

    helped = _run("speech_to_text", "--help")
    assert helped.returncode == 0
    assert "--json" in helped.stdout


def test_speech_to_text_silence_gives_empty_text(tmp_path: Path) -> None:
    silent = tmp_path / "silence.wav"
    with wave.open(str(silent), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.zeros(16000, dtype="<i2").tobytes())
    proc = _run("speech_to_text", str(silent), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["text"], result["segments"], result["duration"]) == ("", [], 1.0)
