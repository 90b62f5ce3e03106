"""What an article may contain: the elements, attributes, URL schemes and CSS properties kept.

One list, read by both passes of ``sanitize`` (the lxml tree pass and the final nh3 pass), so
the two can never disagree about what is allowed. Everything not named here goes. It is the
union of what ZAKER and blog articles carry (the shared corpus, RSSHub's ZAKER output, Hexo
and Jekyll posts): text structure, images with their responsive sources, figures, video and
audio, tables, lists, code, quotes, links and the sandboxed players of the allowed hosts.
"""

from __future__ import annotations

# Elements that stay (their allowed attributes below); any other element is unwrapped (its
# text and children stay) unless DROP_WITH_CONTENT names it.
ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "address", "article", "aside", "audio", "b", "bdi", "bdo", "blockquote",
        "br", "caption", "cite", "code", "col", "colgroup", "dd", "del", "details", "dfn",
        "div", "dl", "dt", "em", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5",
        "h6", "header", "hgroup", "hr", "i", "iframe", "img", "ins", "kbd", "li", "main",
        "mark", "ol", "p", "picture", "pre", "q", "rp", "rt", "ruby", "s", "samp", "section",
        "small", "source", "span", "strike", "strong", "sub", "summary", "sup", "table",
        "tbody", "td", "tfoot", "th", "thead", "time", "tr", "track", "tt", "u", "ul", "var",
        "video", "wbr",
    }
)  # fmt: skip

# Removed with everything inside them: code, the reader page's styling and title, plug-ins,
# frames, and SVG (graphics, with its own script and animation elements, not article text).
DROP_WITH_CONTENT = frozenset(
    {
        "script", "style", "title", "template", "head", "embed", "applet", "base", "meta",
        "link", "frame", "frameset", "iframe", "param", "xml", "import", "bgsound", "layer",
        "ilayer", "input", "keygen", "portal", "noembed", "noframes", "svg",
    }
)  # fmt: skip

# Elements whose content libxml2 reads as raw text while HTML5 readers read markup, or the
# other way round. Their text is kept as preformatted text, the way a reader would show it.
RAW_TEXT_AS_PRE = frozenset({"xmp", "plaintext", "listing"})

# What the final (HTML5) pass removes with its content: whatever the tree pass drops, plus the
# raw-text elements, whose content HTML5 reads as text (unwrapped, it would show as markup).
# The tree pass leaves none of them; this is the backstop.
CLEAN_CONTENT_TAGS = (DROP_WITH_CONTENT - {"iframe"}) | RAW_TEXT_AS_PRE | {"noscript", "textarea"}

# Attributes every allowed element may carry. ``style`` is filtered by property (STYLE_PROPERTIES).
GLOBAL_ATTRIBUTES = frozenset({"class", "id", "title", "lang", "dir", "style"})
TAG_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "hreflang", "name"}),  # rel is set by the final pass, never kept
    "img": frozenset(
        {
            "src",
            "srcset",
            "sizes",
            "width",
            "height",
            "alt",
            "referrerpolicy",
            "loading",
            "decoding",
        }
    ),
    "source": frozenset({"src", "srcset", "sizes", "type", "media", "width", "height"}),
    "video": frozenset(
        {"src", "poster", "controls", "width", "height", "preload", "loop", "muted", "playsinline"}
    ),
    "audio": frozenset({"src", "controls", "preload", "loop", "muted"}),
    "track": frozenset({"src", "kind", "srclang", "label", "default"}),
    "iframe": frozenset(
        {"src", "width", "height", "allowfullscreen", "loading", "referrerpolicy"}
    ),  # sandbox is set by the rule, never kept from the input
    "blockquote": frozenset({"cite"}),
    "q": frozenset({"cite"}),
    "del": frozenset({"cite", "datetime"}),
    "ins": frozenset({"cite", "datetime"}),
    "time": frozenset({"datetime"}),
    "ol": frozenset({"start", "reversed", "type"}),
    "li": frozenset({"value"}),
    "td": frozenset({"colspan", "rowspan", "headers", "align", "valign"}),
    "th": frozenset({"colspan", "rowspan", "headers", "scope", "align", "valign"}),
    "col": frozenset({"span", "width"}),
    "colgroup": frozenset({"span", "width"}),
    "details": frozenset({"open"}),
    "abbr": frozenset({"title"}),
}
# Every attribute name allowed on some element (the tree pass checks names only; the final
# pass checks them per element).
ANY_TAG_ATTRIBUTES = GLOBAL_ATTRIBUTES.union(*TAG_ATTRIBUTES.values())

# Attributes whose value is a URL (srcset: a list of them), checked against URL_SCHEMES.
URL_VALUED = frozenset({"href", "src", "poster", "cite"})
SRCSET_VALUED = frozenset({"srcset"})
# Schemes a URL may have; a URL without one is relative (resolved against the entry's base
# before the rules run). No data: URLs, not even images: see Sanitize's docstring.
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})

# CSS properties kept in a style attribute: layout and typography, none that takes a url().
STYLE_PROPERTIES = frozenset(
    {
        "color", "background-color", "text-align", "text-decoration", "text-indent",
        "font-weight", "font-style", "font-size", "font-family", "line-height",
        "letter-spacing", "white-space", "vertical-align", "width", "height", "max-width",
        "min-width", "max-height", "margin", "margin-top", "margin-bottom", "margin-left",
        "margin-right", "padding", "padding-top", "padding-bottom", "padding-left",
        "padding-right", "border", "border-collapse", "border-spacing", "float", "clear",
        "display", "list-style-type",
    }
)  # fmt: skip
