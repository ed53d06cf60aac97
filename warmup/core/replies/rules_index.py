"""An index of text rules by the literal their pattern starts with.

Running a few hundred regexes over every reply would be slow, and one regex of them all
slower still (Python's engine tries every alternative at every position). Each rule's
pattern starts with a literal (``spamhaus``, ``unusual rate of``, ``tss``); one scan of
the text with a trie-shaped regex of those literals, anchored at word starts, names the
few rules worth running, so in effect a pattern matches where a word starts. Literals
that do not start with an ASCII word character (``: user unknown``) are looked up as
substrings instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

from warmup.core.replies.rules import ReplyRule

__all__ = ["RuleIndex", "anchor", "build_index"]

# --- the rule index -------------------------------------------------------------------

_Trie: TypeAlias = dict[str, "_Trie"]
_META = frozenset("\\.^$*+?{}[]()|")
_QUANTIFIERS = frozenset("?*{")
_WORD_START = re.compile(r"[a-z0-9_]")


def anchor(pattern: str) -> str:
    """The literal every match of ``pattern`` starts with; raises if it is unusable."""
    literal: list[str] = []
    index = 1 if pattern.startswith("^") else 0
    while index < len(pattern) and pattern[index] not in _META:
        literal.append(pattern[index])
        index += 1
    while (
        pattern[index : index + 1] == "\\"
        and not pattern[index + 1 : index + 2].isalnum()
    ):
        literal.append(pattern[index + 1 : index + 2])
        index += 2
        while index < len(pattern) and pattern[index] not in _META:
            literal.append(pattern[index])
            index += 1
    if pattern[index : index + 1] in _QUANTIFIERS and literal:
        literal.pop()
    found = "".join(literal)
    if len(found) < 2 or found != found.lower() or _has_top_level_bar(pattern):
        raise ValueError(
            f"pattern {pattern!r} needs a lower-case leading literal of 2+ chars"
        )
    return found


def _has_top_level_bar(pattern: str) -> bool:
    depth, escaped, in_class = 0, False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif char == "|" and depth == 0:
            return True
    return False


def _trie_regex(words: Iterable[str]) -> str:
    """A regex matching any of ``words``, longest first, factored by common prefixes."""
    root: _Trie = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _emit(root)


def _emit(node: _Trie) -> str:
    branches = [
        re.escape(char) + _emit(child) for char, child in sorted(node.items()) if char
    ]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


@dataclass(frozen=True, slots=True)
class RuleIndex:
    """Text rules by leading literal: ``scan`` finds the literals at word starts."""

    rules: tuple[ReplyRule, ...]
    regexes: tuple[re.Pattern[str], ...]
    scan: re.Pattern[str]
    by_word: dict[str, tuple[int, ...]]
    by_substring: dict[str, tuple[int, ...]]

    def candidates(self, text: str) -> list[int]:
        """Indices of the rules whose leading literal occurs in ``text``, in order."""
        ids: set[int] = set()
        for word in self.scan.findall(text):
            ids.update(self.by_word[word])
        for literal, indices in self.by_substring.items():
            if literal in text:
                ids.update(indices)
        return sorted(ids)


def build_index(rules: tuple[ReplyRule, ...]) -> RuleIndex:
    by_anchor: dict[str, list[int]] = {}
    for index, rule in enumerate(rules):
        by_anchor.setdefault(anchor(rule.pattern or ""), []).append(index)
    words = {
        a: ids for a, ids in by_anchor.items() if a.isascii() and _WORD_START.match(a)
    }
    # A scan reports the longest literal at a position; its prefixes are present too.
    by_word = {
        word: tuple(
            sorted(
                i for other, ids in words.items() if word.startswith(other) for i in ids
            )
        )
        for word in words
    }
    return RuleIndex(
        rules=rules,
        regexes=tuple(re.compile(rule.pattern or "") for rule in rules),
        scan=re.compile(r"\b(?=(" + _trie_regex(words) + "))"),
        by_word=by_word,
        by_substring={a: tuple(ids) for a, ids in by_anchor.items() if a not in words},
    )
