"""Source scores computed by code, each with the factors that made it (never by the model alone).

**Credibility** (0–1) is a sum, clamped to 0–1 and rounded to two places, of:

=====================  ======================================================================
factor                 effect
=====================  ======================================================================
domain class           the class's base score (``domains.toml``: government 0.90 … content
                       farm 0.10; unknown 0.50); the longest matching domain suffix wins
DOI                    +0.05 when the document carries one (a primary, citable record)
data                   +0.03 when it offers data (a dataset, data tables, availability)
methods                +0.03 when it has a methods / methodology section
author                 +0.03 when named, −0.05 when not (0 for a search hit not read yet)
date                   +0.03 when dated, −0.05 when not (0 for a search hit not read yet)
HTTPS                  0 over HTTPS, −0.05 over plain HTTP (files: not applicable)
corroboration          +0.05 per other independent domain supporting the same finding, at
                       most +0.15; an input the research graph fills in (None: not computed)
model rating           optional, 0–1: ±0.05 around 0.5 — one factor among the others
=====================  ======================================================================

**Freshness** (0–1) is ``0.5 ** (age_days / half_life_days)`` from the newer of the
publication and modification dates; the half-life is ``sources.half_life_days`` (365) unless the
caller passes one (a question's time sensitivity). A document without a date has freshness
``None`` and the factor says "date unknown": it is never guessed.

The domain classes ship in ``research/domains.toml``; ``sources.domains_file`` names a TOML file
of the same shape whose entries are added (and win over the shipped ones).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from openmanus_tui.errors import ConfigError

CLASSES = (
    "government", "intergovernmental", "academic", "peer_reviewed", "news", "reference",
    "company", "blog", "forum_social", "content_farm", "unknown",
)  # fmt: skip
CLASS_LABELS = {
    "government": "government",
    "intergovernmental": "intergovernmental organisation",
    "academic": "academic",
    "peer_reviewed": "peer-reviewed publisher",
    "news": "established news",
    "reference": "reference work",
    "company": "company",
    "blog": "blog",
    "forum_social": "forum / social media",
    "content_farm": "known content farm",
    "unknown": "unlisted domain",
    "workspace": "workspace file",
}
DOI_BONUS = 0.05
DATA_BONUS = 0.03
METHODS_BONUS = 0.03
PRESENT_BONUS = 0.03
MISSING_PENALTY = -0.05
HTTP_PENALTY = -0.05
CORROBORATION_STEP = 0.05
CORROBORATION_MAX = 0.15
MODEL_WEIGHT = 0.1
DEFAULT_HALF_LIFE_DAYS = 365.0


@dataclass
class Factor:
    """One visible reason behind a score: what was seen, and what it added (None: it shaped
    the score without adding, as freshness's date and half-life do)."""

    name: str
    detail: str
    effect: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        sign = "" if self.effect is None else f" ({self.effect:+.2f})"
        return f"{self.name}: {self.detail}{sign}"


@dataclass
class Score:
    value: float | None  # 0–1; None only for freshness without a date
    factors: list[Factor] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "factors": [f.as_dict() for f in self.factors]}


# ---- domain classes -----------------------------------------------------------------------
@dataclass
class DomainClasses:
    entries: dict[str, str]  # domain or suffix -> class
    scores: dict[str, float]

    def classify(self, host: str) -> tuple[str, str | None]:
        """(class, the entry that matched); ("unknown", None) when nothing does."""
        host = host.lower().rstrip(".")
        labels = host.split(".")
        for i in range(len(labels)):  # longest suffix first
            suffix = ".".join(labels[i:])
            if suffix in self.entries:
                return self.entries[suffix], suffix
        return "unknown", None

    def score(self, klass: str) -> float:
        return self.scores.get(klass, self.scores.get("unknown", 0.5))


def _parse(data: dict[str, Any], origin: str) -> tuple[dict[str, str], dict[str, float]]:
    entries: dict[str, str] = {}
    scores: dict[str, float] = {}
    unknown_keys = set(data) - {"scores", "classes"}
    if unknown_keys:
        raise ConfigError(f"{origin}: unknown key {sorted(unknown_keys)[0]!r} (scores, classes)")
    for klass, value in (data.get("scores") or {}).items():
        if klass not in CLASSES:
            raise ConfigError(f"{origin}: scores.{klass}: unknown class ({', '.join(CLASSES)})")
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(f"{origin}: scores.{klass}: expected a number from 0 to 1")
        scores[klass] = float(value)
    for klass, domains in (data.get("classes") or {}).items():
        if klass not in CLASSES:
            raise ConfigError(f"{origin}: classes.{klass}: unknown class ({', '.join(CLASSES)})")
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            raise ConfigError(f"{origin}: classes.{klass}: expected a list of domains")
        for domain in domains:
            entries[domain.strip().lower().removeprefix("*.").strip(".")] = klass
    return entries, scores


@lru_cache(maxsize=8)
def _load(user_file: str | None, mtime: float | None) -> DomainClasses:
    shipped = resources.files("openmanus_tui.research").joinpath("domains.toml").read_text()
    entries, scores = _parse(tomllib.loads(shipped), "research/domains.toml")
    if user_file:
        path = Path(user_file)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: domain list not found (sources.domains_file)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: broken TOML: {exc}") from None
        more_entries, more_scores = _parse(data, str(path))
        entries.update(more_entries)
        scores.update(more_scores)
    return DomainClasses(entries, scores)


def domain_classes(user_file: Path | str | None = None) -> DomainClasses:
    """The shipped classes plus ``user_file``'s (re-read when the file changes)."""
    if user_file is None:
        return _load(None, None)
    path = Path(user_file).expanduser()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = None
    return _load(str(path), mtime)


# ---- credibility --------------------------------------------------------------------------
@dataclass
class CredibilityInputs:
    """What the credibility score is computed from (stored with the source, so the score can
    be recomputed when corroboration arrives)."""

    host: str
    domain_class: str
    matched: str | None = None  # the domains.toml entry that gave the class
    https: bool | None = None  # None: not a URL (a workspace file)
    author: bool = False
    dated: bool = False
    doi: str | None = None
    data: bool = False
    methods: bool = False
    corroboration: int | None = None
    model_rating: float | None = None
    fetched: bool = True  # False: only a search hit so far, author and date not known yet

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def credibility(inputs: CredibilityInputs, classes: DomainClasses | None = None) -> Score:
    classes = classes or domain_classes()
    factors: list[Factor] = []
    if inputs.domain_class == "workspace":
        base = classes.score("unknown")
        detail = "the user's own file (neutral)"
    else:
        base = classes.score(inputs.domain_class)
        label = CLASS_LABELS.get(inputs.domain_class, inputs.domain_class)
        detail = f"{label} ({inputs.matched})" if inputs.matched else label
        detail = f"{inputs.host}: {detail}"
    factors.append(Factor("domain class", detail, base))
    if inputs.doi:
        factors.append(Factor("DOI", inputs.doi, DOI_BONUS))
    if inputs.data:
        factors.append(Factor("data", "offers data", DATA_BONUS))
    if inputs.methods:
        factors.append(Factor("methods", "has a methods section", METHODS_BONUS))
    if not (inputs.doi or inputs.data or inputs.methods):
        factors.append(Factor("primary signals", "no DOI, data or methods found", 0.0))
    unread = "unknown until the page is read"
    if inputs.author:
        factors.append(Factor("author", "named", PRESENT_BONUS))
    else:
        factors.append(Factor("author", unread, 0.0) if not inputs.fetched
                       else Factor("author", "not named", MISSING_PENALTY))  # fmt: skip
    if inputs.dated:
        factors.append(Factor("date", "dated", PRESENT_BONUS))
    else:
        factors.append(Factor("date", unread, 0.0) if not inputs.fetched
                       else Factor("date", "no date", MISSING_PENALTY))  # fmt: skip
    if inputs.https is True:
        factors.append(Factor("HTTPS", "yes", 0.0))
    elif inputs.https is False:
        factors.append(Factor("HTTPS", "no (plain HTTP)", HTTP_PENALTY))
    if inputs.corroboration is None:
        factors.append(Factor("corroboration", "not computed yet", 0.0))
    elif inputs.corroboration <= 0:
        factors.append(Factor("corroboration", "no other domain supports it", 0.0))
    else:
        n = inputs.corroboration
        effect = min(CORROBORATION_MAX, CORROBORATION_STEP * n)
        factors.append(
            Factor("corroboration", f"{n} other domain{' agrees' if n == 1 else 's agree'}", effect)
        )
    if inputs.model_rating is not None:
        rating = min(1.0, max(0.0, inputs.model_rating))
        factors.append(
            Factor("model rating", f"{rating:.2f}", round(MODEL_WEIGHT * (rating - 0.5), 3))
        )
    total = sum(f.effect or 0.0 for f in factors)
    return Score(round(min(1.0, max(0.0, total)), 2), factors)


# ---- freshness ----------------------------------------------------------------------------
def _as_date(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def freshness(
    published: str | date | None,
    modified: str | date | None = None,
    *,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
    now: datetime | None = None,
) -> Score:
    pub, mod = _as_date(published), _as_date(modified)
    half = Factor("half-life", f"{half_life_days:g} days")
    if pub is None and mod is None:
        return Score(None, [Factor("date", "unknown: the source gives no date"), half])
    if pub is not None and (mod is None or mod <= pub):
        which, when = "published", pub
    else:
        assert mod is not None
        which, when = "modified", mod
    today = (now or datetime.now(UTC)).date()
    age = (today - when).days
    factors = [Factor("date", f"{which} {when.isoformat()}")]
    if age < 0:
        factors.append(Factor("age", f"dated {-age} days in the future: treated as today"))
        age = 0
    else:
        factors.append(Factor("age", f"{age} days"))
    factors.append(half)
    return Score(round(0.5 ** (age / half_life_days), 2), factors)
