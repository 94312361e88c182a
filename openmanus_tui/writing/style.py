"""Style findings computed offline: proselint's checks (BSD), passive-voice sentences and long
sentences. proselint 0.16 finds nothing until its checks are registered: done once here."""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from openmanus_tui.writing.prose import Paragraph, markdown_parser, sentences, words

# A form of "to be" (or "get"), at most one adverb, then a past participle.
_IRREGULAR = (  # noqa: SIM905 (a word list reads best as text)
    "arisen awoken been borne beaten become begun bent bet bid bitten bled blown broken "
    "bred brought built burnt burst bought cast caught chosen clung come cost crept cut "
    "dealt dug done drawn dreamt drunk driven eaten fallen fed felt fought found fled "
    "flung flown forbidden forgotten forgiven frozen got gotten given gone ground grown "
    "hung had heard hidden hit held hurt kept knelt known laid led leapt learnt left lent "
    "let lain lit lost made meant met paid put quit read ridden rung risen run said seen "
    "sought sold sent set sewn shaken shed shone shot shown shrunk shut sung sunk sat "
    "slain slept slid slung spoken sped spent spun split spread sprung stood stolen stuck "
    "stung struck sworn swept swum swung taken taught torn told thought thrown thrust "
    "trodden understood woken worn woven wept won wound written "
).split()
_PASSIVE = re.compile(
    r"\b(?:am|is|are|was|were|be|been|being|get|gets|got|gotten)\s+(?:\w+ly\s+)?"
    r"(?:\w+ed|" + "|".join(_IRREGULAR) + r")\b", re.I)
_NOT_PARTICIPLE = frozenset(["need", "seed", "feed", "speed", "bed", "red", "shed"])


def is_passive(sentence: str) -> bool:
    for match in _PASSIVE.finditer(sentence):
        last = match.group(0).split()[-1].lower()
        if last not in _NOT_PARTICIPLE:
            return True
    return False


@dataclass(frozen=True)
class Finding:
    check: str
    message: str
    line: int
    column: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StyleReport:
    findings: list[Finding] = field(default_factory=list)
    findings_capped: bool = False
    passive_sentences: int = 0
    long_sentences: int = 0
    long_sentence_words: int = 25
    sentences: int = 0
    long_sentence_examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.cache
def _registered() -> None:
    from proselint.checks import __register__
    from proselint.registry import CheckRegistry

    CheckRegistry().register_many(__register__)


@functools.cache
def _fancy_uncomparables(flags: int) -> re.Pattern[str]:
    # proselint's "most/least + uncomparable" check runs 96 look-behind patterns one by one
    # (0.4 s on 10,000 words, more than all its other checks together): the same patterns
    # as one alternation, one pass.
    from proselint.checks.uncomparables import FANCY_COMPARATORS, UNCOMPARABLES

    return re.compile(rf"(?<!at\s)\b(?:{'|'.join(FANCY_COMPARATORS)})\s+"
                      rf"(?:{'|'.join(UNCOMPARABLES)})\b", flags)


def _is_slow_fancy_check(check: Any) -> bool:
    return check.path == "uncomparables" and type(check.engine).__name__ == "Fancy"


MAX_FINDINGS = 200


_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")


def without_code(markdown: str) -> str:
    """The document with its code blocks and inline code spans blanked out, every other
    character where it was (so findings keep the document's lines and columns): code is not
    prose, and a command or a straight quote in it is no style finding."""
    lines = markdown.split("\n")
    in_code: set[int] = set()
    for token in markdown_parser().parse(markdown):
        if token.type in ("fence", "code_block") and token.map:
            in_code.update(range(token.map[0], token.map[1]))
    for n, line in enumerate(lines):
        if n in in_code:
            lines[n] = " " * len(line)
        elif "`" in line:
            lines[n] = _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
    return "\n".join(lines)


def proselint_findings(markdown: str) -> tuple[list[Finding], bool]:
    """proselint's findings on the document's prose (line numbers are the document's)."""
    from proselint.config import DEFAULT
    from proselint.registry import CheckRegistry
    from proselint.tools import LintFile

    _registered()
    # LintFile pads the text; positions are 1-based
    linted = LintFile("<document>", without_code(markdown))
    found: list[Finding] = []
    # LintFile.lint's loop, with the slow check replaced by the one-pass pattern.
    for check in CheckRegistry().get_all_enabled(DEFAULT["checks"]):
        if _is_slow_fancy_check(check):
            results = [(m.start(), "uncomparables", "Comparison of an uncomparable: "
                        f"'{m.group(0).strip()}' is not comparable.")
                       for m in _fancy_uncomparables(int(check.engine.opts.re_flag)).finditer(
                           linted.content)]
        else:
            results = [(r.span[0], r.check_path, r.message)
                       for r in check.check_with_flags(linted.content)]
        for start, path, message in results:
            if not check.flags.allow_quotes and linted.is_quoted_pos(start):
                continue
            line, column = linted.line_col_of(start)
            found.append(Finding(path, message, max(1, line), column))
        if len(found) > MAX_FINDINGS * 4:
            break
    found.sort(key=lambda f: (f.line, f.column))
    return found[:MAX_FINDINGS], len(found) > MAX_FINDINGS


def style_report(markdown: str, prose: list[Paragraph], long_sentence_words: int = 25,
                 ) -> StyleReport:
    report = StyleReport(long_sentence_words=long_sentence_words)
    report.findings, report.findings_capped = proselint_findings(markdown)
    for paragraph in prose:
        for sentence in sentences(paragraph.text):
            report.sentences += 1
            if is_passive(sentence):
                report.passive_sentences += 1
            if len(words(sentence)) > long_sentence_words:
                report.long_sentences += 1
                if len(report.long_sentence_examples) < 5:
                    report.long_sentence_examples.append(
                        f"line {paragraph.line}: {sentence[:80]}…")
    return report
