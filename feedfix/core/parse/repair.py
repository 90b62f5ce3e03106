"""Mending the breakages that stop real feeds from being XML, each without losing text.

Each function takes the feed's text and returns it mended (the same string when there was
nothing to mend). ``parse`` applies them one after the other, trying the strict parser after
each, and names every repair it needed in a warning. When none is enough, the recovering
parser reads what it can; ``keep_references`` first makes every entity reference a character
reference, because libxml2 drops ``&amp;``/``&lt;``/… after the first error, and with them
every escaped tag of an escaped-HTML description, but keeps character references.
"""

from __future__ import annotations

import html.entities
import re

from feedfix.core.parse.namespaces import PREFIXES

_NAMED_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_ENTITIES = {"amp": "&#38;", "lt": "&#60;", "gt": "&#62;", "quot": "&#34;", "apos": "&#39;"}
_BARE_AMP = re.compile(r"&(?!#\d+;|#[xX][0-9a-fA-F]+;|[A-Za-z][\w.-]*;)")
_UPPER_HEX_REF = re.compile(r"&#X([0-9a-fA-F]+;)")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_PREFIXED_NAME = re.compile(r"(?:</?|\s)([A-Za-z_][\w.-]*):[A-Za-z_][\w.-]*")
_DECLARED = re.compile(r"xmlns:([A-Za-z_][\w.-]*)\s*=")
_ROOT_NAME = re.compile(r"<(?![?!])[A-Za-z_][\w.:-]*")
_OPENER_OR_ENTITY = re.compile(r"<!\[CDATA\[|<!--|&(amp|lt|gt|quot|apos);")
_CLOSERS = {"<![CDATA[": "]]>", "<!--": "-->"}
MAX_PREFIXES = 64  # undeclared prefixes declared at most; past that the feed is not one


def html_entities(text: str) -> str:
    """``&nbsp;`` and friends are not XML: turn them into character references."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in _XML_ENTITIES:
            return match.group(0)
        codepoint = html.entities.name2codepoint.get(name)
        return f"&#{codepoint};" if codepoint else match.group(0)

    return _NAMED_ENTITY.sub(sub, text)


def undeclared_prefixes(text: str) -> tuple[str, list[str]]:
    """Declare on the root element every namespace prefix the feed uses without declaring
    it: a well-known one (``itunes``, ``media``, ``dc``…) as its vocabulary, any other as a
    made-up ``urn:feedfix:undeclared:`` namespace. Returns the text and the prefixes."""
    used = {p for p in _PREFIXED_NAME.findall(text) if p.lower() not in {"xml", "xmlns"}}
    missing = sorted(used - set(_DECLARED.findall(text)))
    root = _ROOT_NAME.search(text)
    if not missing or root is None or len(missing) > MAX_PREFIXES:
        return text, []
    declarations = "".join(
        f' xmlns:{prefix}="{PREFIXES.get(prefix.lower(), "urn:feedfix:undeclared:" + prefix)}"'
        for prefix in missing
    )
    return text[: root.end()] + declarations + text[root.end() :], missing


def bare_ampersands(text: str) -> str:
    """The commonest breakages made well-formed: a bare ``&``, ``&#X41;`` (XML wants a small
    ``x``) and a control character XML 1.0 forbids."""
    text = _UPPER_HEX_REF.sub(r"&#x\1", _CONTROL.sub("", text))
    return _BARE_AMP.sub("&amp;", text)


def keep_references(text: str) -> str:
    """``&amp;``/``&lt;``/``&gt;``/``&quot;``/``&apos;`` as character references, outside
    CDATA sections and comments, so that recovering from an error keeps them.

    One pass: a section is skipped with one ``find`` of its end; once an end is missing,
    it is never looked for again (an unclosed opener is text, as the rest of its kind)."""
    out: list[str] = []
    done = at = 0
    unclosed: set[str] = set()
    while (found := _OPENER_OR_ENTITY.search(text, at)) is not None:
        name = found.group(1)
        if name:
            out += (text[done : found.start()], _XML_ENTITIES[name])
            done = at = found.end()
            continue
        closer = _CLOSERS[found.group(0)]
        end = -1 if closer in unclosed else text.find(closer, found.end())
        if end < 0:
            unclosed.add(closer)
            at = found.end()
        else:
            at = end + len(closer)
    return "".join(out) + text[done:] if out else text


def without_leading_space(data: bytes) -> bytes:
    """Whitespace before the XML declaration (after a UTF-8 BOM or none) is no damage, but
    libxml2 refuses it: drop it."""
    bom = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""
    rest = data[len(bom) :]
    stripped = rest.lstrip(b" \t\r\n")
    return data if len(stripped) == len(rest) else bom + stripped
