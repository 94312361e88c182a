"""Approval rules: parsing ``Tool(specifier)`` patterns and deciding which stored rules apply.

A rule is ``tool`` or ``tool(specifier)`` with an action (allow / ask / deny), in the style of
Claude Code: ``shell_exec(git status *)``, ``file_write(src/**)``, ``mcp__files__read_file``,
``mcp__files`` (every tool of that MCP server), bare ``file_read``. The tool part may be a glob.

What the specifier is matched against (its *subject*):

- ``shell_exec``: the command. Compound commands (``&&``, ``||``, ``;``, ``|``, ``&``, newlines,
  sub-shells) are split with a quote-aware tokenizer; an allow needs EVERY part matched by an
  allow rule, while a single matching part is enough for deny and ask (the strict direction).
  Commands with ``$(...)``, backticks or process substitution are never allowed by a pattern.
  For deny and ask, leading ``VAR=value`` words, wrappers such as ``env`` / ``nohup`` /
  ``command``, a directory in front of the program and ``sh -c "..."`` are looked through.
  The glob's ``*`` matches anything; a trailing `` *`` (or Claude's ``:*``) also matches the
  bare command, so ``git status *`` matches ``git status`` but not ``git statusx``.
- file tools: the workspace-relative path, normalised; ``*`` stays within one directory, ``**``
  crosses them, ``dir/**`` matches ``dir`` itself too. A path that leaves the workspace (``..``,
  absolute, ``~``) is never allowed by a pattern.
- ``code_exec``: the code; ``web_fetch``: the URL. Any other tool: its arguments as canonical
  JSON (sorted keys).

Precedence: deny wins, then ask, then allow; within an action the narrowest scope (session,
project, global) and then the oldest rule is reported. Nothing here touches the database.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

from openmanus_tui.errors import OpenManusError

Action = Literal["allow", "ask", "deny"]
Scope = Literal["session", "project", "global"]
ACTIONS: tuple[Action, ...] = ("allow", "ask", "deny")
SCOPES: tuple[Scope, ...] = ("session", "project", "global")
SHELL_TOOL = "shell_exec"
FILE_TOOLS = frozenset({"file_read", "file_write", "file_edit", "list_files"})
# tools whose subject is one text argument (web_fetch: its URL, so a rule can name a site)
TEXT_FIELDS = {"code_exec": "code", "web_fetch": "url"}
MCP_PREFIX = "mcp__"

_RULE_RE = re.compile(r"^\s*([A-Za-z0-9_\-*?\[\]]+)\s*(?:\((.*)\))?\s*$", re.DOTALL)
_UNSAFE_SHELL = ("$(", "`", "<(", ">(")
_WRAPPERS = frozenset({"env", "command", "builtin", "exec", "nohup", "time", "nice", "sudo"})
_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# Commands whose first argument names what they do (``git status``, ``npm test``).
_TWO_WORD = frozenset({
    "git", "npm", "pnpm", "yarn", "npx", "pip", "pip3", "uv", "cargo", "go", "docker",
    "kubectl", "make", "python", "python3", "node", "bash", "sh", "poetry", "pytest", "dotnet",
})


class RuleError(OpenManusError):
    """A rule that cannot be parsed or saved; always a one-line user mistake."""

    error_class = "user"


@dataclass(frozen=True)
class RulePattern:
    """The ``Tool(specifier)`` part of a rule, without action or scope."""

    tool: str
    specifier: str | None = None

    @classmethod
    def parse(cls, text: str) -> RulePattern:
        m = _RULE_RE.match(text or "")
        if m is None:
            raise RuleError(
                f"not a rule: {text!r}",
                hint="Write Tool or Tool(pattern), e.g. shell_exec(git status *) or "
                "file_write(src/**).",
            )
        tool, spec = m.group(1), m.group(2)
        if spec is not None:
            spec = " ".join(spec.split()) if tool == SHELL_TOOL else spec.strip()
            if not spec:
                raise RuleError(
                    f"empty pattern in {text!r}", hint=f"Write just {tool} to match every call."
                )
        return cls(tool, spec)

    @property
    def text(self) -> str:
        return self.tool if self.specifier is None else f"{self.tool}({self.specifier})"

    def __str__(self) -> str:
        return self.text

    def matches_tool(self, tool: str) -> bool:
        if self.tool == tool or fnmatch.fnmatchcase(tool, self.tool):
            return True
        # ``mcp__server`` stands for every tool of that server.
        return self.tool.startswith(MCP_PREFIX) and self.tool.count("__") == 1 and \
            tool.startswith(self.tool + "__")

    def matches(self, tool: str, args: dict[str, Any], action: Action = "allow") -> bool:
        """Does this pattern alone decide the call, read with ``action``'s semantics (an allow
        must cover every part of a compound command; deny / ask need one part)?"""
        return self.matches_tool(tool) and self.matches_args(tool, args, action)

    def matches_args(self, tool: str, args: dict[str, Any], action: Action = "allow") -> bool:
        """The specifier part of ``matches`` (the tool name is not checked)."""
        if self.specifier is None:
            return True
        if tool == SHELL_TOOL:
            command = str(args.get("command", ""))
            if action == "allow":
                parts = allow_parts(command)
                return parts is not None and all(self.matches_command(p) for p in parts)
            return any(self.matches_command(p) for p in deny_candidates(command))
        if tool in FILE_TOOLS:
            path = normalise_path(str(args.get("path", ".")))
            if path is None:
                return action != "allow" and self.specifier in ("**", "*")
            return path_glob(self.specifier).match(path) is not None
        return fnmatch.fnmatchcase(subject(tool, args), self.specifier)

    def matches_command(self, part: str) -> bool:
        spec = self.specifier or "*"
        if spec.endswith(":*"):
            spec = spec[:-2].rstrip() + " *"
        if fnmatch.fnmatchcase(part, spec):
            return True
        return spec.endswith(" *") and part == spec[:-2].rstrip()


@dataclass
class Rule:
    """A stored rule (``store/rules.py`` persists it)."""

    pattern: RulePattern
    action: Action = "allow"
    scope: Scope = "session"
    id: int | None = None
    session_id: str | None = None
    project: str | None = None
    created: float = 0.0
    hits: int = 0
    last_hit: float | None = None
    match: list[str] = field(default_factory=list)
    not_match: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.pattern.text

    @property
    def tool(self) -> str:
        return self.pattern.tool

    @property
    def specifier(self) -> str | None:
        return self.pattern.specifier

    def where(self) -> str:
        if self.scope == "session":
            return f"session {self.session_id}"
        if self.scope == "project":
            return f"project {self.project}"
        return "global"


@dataclass
class RuleDecision:
    """The rules that decide one call: their shared action and each deciding rule."""

    action: Action
    rules: list[Rule]

    @property
    def text(self) -> str:
        return " + ".join(r.text for r in self.rules)

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.rules if r.id is not None]

    def describe(self) -> str:
        verb = {"allow": "allowed", "ask": "made to ask", "deny": "blocked"}[self.action]
        where = ", ".join(sorted({r.scope for r in self.rules}))
        return f"{verb} by {where} rule {self.text}"


# ---- subjects ------------------------------------------------------------------------------
def normalise_path(path: str) -> str | None:
    """The workspace-relative form of ``path``, or None when it would leave the workspace."""
    if not path or "\0" in path or path.startswith(("/", "~")):
        return None
    norm = posixpath.normpath(path.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        return None
    return norm


def subject(tool: str, args: dict[str, Any]) -> str:
    """The text a specifier of ``tool`` is matched against (shell parts aside)."""
    if tool == SHELL_TOOL:
        return " ".join(str(args.get("command", "")).split())
    if tool in FILE_TOOLS:
        return normalise_path(str(args.get("path", "."))) or str(args.get("path", ""))
    if tool in TEXT_FIELDS:
        return str(args.get(TEXT_FIELDS[tool], ""))
    return json.dumps(args, sort_keys=True, ensure_ascii=False, default=str)


@lru_cache(maxsize=512)
def path_glob(pattern: str) -> re.Pattern[str]:
    """Compile a path glob: ``**`` crosses directories, ``*`` and ``?`` do not."""
    pattern = normalise_path(pattern.rstrip("/")) or pattern
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    body = "".join(out)
    if pattern.endswith("/**"):  # ``dir/**`` covers the directory itself
        body = body[: -len("/.*")] + "(?:/.*)?"
    return re.compile(rf"\A{body}\Z", re.DOTALL)


def _tokens(command: str) -> list[str] | None:
    lexer = shlex.shlex(command.replace("\\\n", ""), posix=True, punctuation_chars="();<>|&\n")
    lexer.whitespace = " \t\r"  # newlines separate commands: they are punctuation here
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes
        return None


def _is_separator(token: str) -> bool:
    return bool(token) and all(c in "();<>|&\n" for c in token) and not any(
        c in token for c in "<>"
    )


def _split(command: str) -> list[list[str]] | None:
    tokens = _tokens(command)
    if tokens is None:
        return None
    parts: list[list[str]] = []
    current: list[str] = []
    for token in tokens:
        if _is_separator(token):
            if current:
                parts.append(current)
            current = []
        else:
            current.append(token)
    if current:
        parts.append(current)
    return parts


def split_command(command: str) -> list[str] | None:
    """The simple commands of a shell line (words joined by one space), or None when it
    cannot be tokenized. Redirections stay with their command."""
    parts = _split(command)
    return None if parts is None else [" ".join(words) for words in parts]


def allow_parts(command: str) -> list[str] | None:
    """The parts an allow rule must each match, or None when no pattern may allow it."""
    if any(mark in command for mark in _UNSAFE_SHELL):
        return None
    parts = split_command(command)
    return parts or None


def deny_candidates(command: str, depth: int = 0) -> list[str]:
    """Every text a deny / ask rule is tried against: the whole line, each part, the part with
    assignments, wrappers and the program's directory removed, ``sh -c`` and backtick bodies."""
    out = [" ".join(command.split())]
    parts = _split(command) or []
    for inner in re.findall(r"`([^`]*)`", command):
        parts += _split(inner) or [inner.split()]
    for words in parts:
        out.append(" ".join(words))
        while words and (_ASSIGNMENT.match(words[0]) or words[0] in _WRAPPERS):
            words = words[1:]
        if words and "/" in words[0]:
            words = [words[0].rsplit("/", 1)[1], *words[1:]]
        if not words:
            continue
        out.append(" ".join(words))
        if depth < 3 and words[0] in _SHELLS and "-c" in words[:-1]:
            out += deny_candidates(words[words.index("-c") + 1], depth + 1)
    return list(dict.fromkeys(out))


# ---- deciding ------------------------------------------------------------------------------
def _ordered(rules: Iterable[Rule], action: Action) -> list[Rule]:
    rank = {s: i for i, s in enumerate(SCOPES)}
    return sorted(
        (r for r in rules if r.action == action),
        key=lambda r: (rank.get(r.scope, 9), r.id if r.id is not None else 1 << 62),
    )


def decide(rules: Sequence[Rule], tool: str, args: dict[str, Any]) -> RuleDecision | None:
    """The rules that decide a call: deny wins, then ask, then allow; None when none applies."""
    strict: tuple[Action, ...] = ("deny", "ask")
    for action in strict:
        ordered = _ordered(rules, action)
        hit = next((r for r in ordered if r.pattern.matches(tool, args, action)), None)
        if hit is not None:
            return RuleDecision(action, [hit])
    allows = [r for r in _ordered(rules, "allow") if r.pattern.matches_tool(tool)]
    if not allows:
        return None
    whole = next((r for r in allows if r.pattern.matches(tool, args, "allow")), None)
    if whole is not None:
        return RuleDecision("allow", [whole])
    if tool != SHELL_TOOL:
        return None
    # A compound command may be covered part by part by different allow rules.
    parts = allow_parts(str(args.get("command", "")))
    if parts is None:
        return None
    used: list[Rule] = []
    for part in parts:
        rule = next(
            (r for r in allows if r.specifier is not None and r.pattern.matches_command(part)),
            None,
        )
        if rule is None:
            return None
        if rule not in used:
            used.append(rule)
    return RuleDecision("allow", used)


def explain_miss(
    pattern: RulePattern, tool: str, args: dict[str, Any], others: Sequence[Rule] = ()
) -> str | None:
    """Why an allow rule with ``pattern`` (next to the ``others`` already stored) would NOT let
    this call through, in one line; None when it would."""
    if not pattern.matches_tool(tool):
        return f"the rule is for {pattern.tool}, but this call is {tool}"
    trial = [*others, Rule(pattern, "allow", id=-1)]
    decision = decide(trial, tool, args)
    if decision is not None and decision.action == "allow":
        return None
    if decision is not None:
        return f"this call would still be {decision.describe()}"
    if tool == SHELL_TOOL:
        command = str(args.get("command", ""))
        if any(mark in command for mark in _UNSAFE_SHELL):
            return "commands with $(...), backticks or <(...) are never allowed by a pattern"
        parts = split_command(command)
        if parts is None:
            return "the command has unbalanced quotes"
        allows = [r for r in trial if r.action == "allow" and r.specifier is not None]
        missed = [p for p in parts if not any(r.pattern.matches_command(p) for r in allows)]
        if missed:
            return "not covered: " + ", ".join(repr(p) for p in missed[:3])
    if tool in FILE_TOOLS and normalise_path(str(args.get("path", "."))) is None:
        return "the path leaves the workspace"
    return f"{pattern.text} does not match {subject(tool, args)!r}"


def example_args(tool: str, example: str) -> dict[str, Any]:
    """The arguments a ``match`` / ``not_match`` example stands for: a command for the shell,
    a path for file tools, the code for ``code_exec``, else JSON arguments."""
    if tool == SHELL_TOOL:
        return {"command": example}
    if tool in FILE_TOOLS:
        return {"path": example}
    if tool in TEXT_FIELDS:
        return {TEXT_FIELDS[tool]: example}
    try:
        value = json.loads(example)
    except json.JSONDecodeError:
        raise RuleError(
            f"example {example!r} for {tool} is not JSON arguments",
            hint='Write the arguments as a JSON object, e.g. {"query": "x"}.',
        ) from None
    if not isinstance(value, dict):
        raise RuleError(f"example {example!r} for {tool} is not a JSON object")
    return value


def check_examples(
    pattern: RulePattern, action: Action, match: Iterable[str], not_match: Iterable[str]
) -> None:
    """Codex-style inline tests: raise ``RuleError`` naming the first example that fails."""
    tool = pattern.tool
    for example in match:
        if not pattern.matches_args(tool, example_args(tool, example), action):
            raise RuleError(f"{pattern.text} does not match its example {example!r}")
    for example in not_match:
        if pattern.matches_args(tool, example_args(tool, example), action):
            raise RuleError(f"{pattern.text} matches {example!r}, listed as not_match")


def suggest_pattern(tool: str, args: dict[str, Any]) -> str:
    """An editable starting point for "always allow": the command's program (and sub-command)
    for the shell, the parent folder for file tools, the tool alone otherwise."""
    if tool == SHELL_TOOL:
        parts = split_command(str(args.get("command", ""))) or []
        if not parts:
            return tool
        words = parts[0].split(" ")
        head = words[:2] if (
            len(words) > 1 and words[0] in _TWO_WORD and not words[1].startswith("-")
        ) else words[:1]
        return f"{tool}({' '.join(head)} *)"
    if tool in FILE_TOOLS:
        path = normalise_path(str(args.get("path", ".")))
        if path is None:
            return tool
        if tool == "list_files":
            return f"{tool}({'**' if path == '.' else path + '/**'})"
        parent = posixpath.dirname(path)
        return f"{tool}({parent}/**)" if parent else f"{tool}({path})"
    if tool == "web_fetch":  # the site: its scheme and host, any page
        parts = urlsplit(str(args.get("url", "")))
        if parts.scheme in ("http", "https") and parts.netloc and "@" not in parts.netloc:
            return f"{tool}({parts.scheme}://{parts.netloc}/*)"
    return tool
