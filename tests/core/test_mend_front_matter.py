"""Front matter in fix-posts: found as convert finds it, its URL values mended in their own
style, and refused when mending would change any other value."""

from __future__ import annotations

import pytest
import yaml
from mendcheck import UNWRAP_ONLY, mend_text

from feedfix.core.errors import InputError
from feedfix.core.mend import mend
from feedfix.core.mend.front_matter import FRONT_MATTER, locate_front_matter, segments
from feedfix.core.parse.post import _FRONT_MATTER as POST_FRONT_MATTER


@pytest.mark.parametrize(
    "text",
    [
        "---\ntitle: a\n---\nbody",
        "\n\n---\ntitle: a\n...\nbody",
        "---\n---\nbody",
        "--- \ntitle: a\n---",
        "---\ntitle: a\n--\nbody",
        "title: a\n---\nbody",
        "---\nk: v\n----\n---\nbody",
        "---\na: 1\n---",
        "\n \n---\n\n---\n",
    ],
)
def test_front_matter_block_is_the_one_convert_reads(text: str) -> None:
    """On LF files the mender finds the same front matter block as convert's post parser."""
    ours, theirs = FRONT_MATTER.match(text), POST_FRONT_MATTER.match(text)
    assert (ours is None) == (theirs is None)
    located = locate_front_matter(text)
    assert (located is None) == (ours is None)
    if ours and theirs and located:
        assert ours.span(1) == theirs.span(1) == located[:2]
        assert ours.end() == theirs.end() == located[2]


def test_crlf_front_matter_is_found() -> None:
    """A CRLF file's closing ``---\\r\\n`` ends the block."""
    text = "---\r\ntitle: a\r\n---\r\nbody"
    match, located = FRONT_MATTER.match(text), locate_front_matter(text)
    assert match is not None and match.group(1) == "title: a"
    assert located == (*match.span(1), match.end())


def test_segments_leave_out_keys_and_comments() -> None:
    """Only values are scanned: not keys, not comments, not the text after a closing quote."""
    text = (
        "# c: //x\nk1: 'v1' # //c1\nk2: \"v2\"\nk3: plain # //c3\n- item\n"
        "k4: |\n  # in a block\nk5: [a, b]\n"
    )
    found = [(text[s.start : s.end], s.style) for s in segments(text, 0, len(text))]
    assert found == [
        ("v1", "single"),
        ("v2", "double"),
        ("plain", "plain"),
        ("item", "plain"),
        ("# in a block", "plain"),
        ("[a, b]", "flow"),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("k: 'https://cors.zfour.workers.dev/?http://a.example/it''s.jpg'",
         "k: 'http://a.example/it''s.jpg'"),
        ('k: "https://cors.zfour.workers.dev/?http://a.example/x.jpg"',
         'k: "http://a.example/x.jpg"'),
        ("k: https://cors.zfour.workers.dev/?http://a.example/x.jpg#frag",
         "k: http://a.example/x.jpg#frag"),
        ("- https://i3.wp.com/a.example/x.jpg?ssl=1", "- https://a.example/x.jpg"),
    ],
    ids=["single-with-quote", "double", "plain-fragment", "list-item"],
)  # fmt: skip
def test_front_matter_values_keep_their_style(line: str, expected: str) -> None:
    """The unwrapped URL is written in the value's own style and reads back as that URL."""
    mended = mend_text(f"---\n{line}\n---\nbody\n")
    assert mended == f"---\n{expected}\n---\nbody\n"
    assert yaml.safe_load(mended.split("---")[1]) == yaml.safe_load(expected)


def test_an_escape_next_to_the_url_is_kept() -> None:
    """In a double-quoted value the URL stops at a backslash escape, which stays as written."""
    text = '---\nk: "https://cors.zfour.workers.dev/?http://a.example/x.jpg\\x41"\n---\n'
    result = mend(text.encode(), UNWRAP_ONLY)
    assert result.after == '---\nk: "http://a.example/x.jpg\\x41"\n---\n'
    assert yaml.safe_load(result.after.split("---")[1]) == {"k": "http://a.example/x.jpgA"}


def test_front_matter_that_would_change_other_data_is_refused() -> None:
    """A wrapped URL used as a mapping key is not a value: the re-read check sees the data
    change in a way URL replacement does not explain and refuses the file."""
    text = "---\n? https://cors.zfour.workers.dev/?http://a.example/x.jpg\n: v\n---\nbody"
    with pytest.raises(InputError, match="without changing other values"):
        mend(text.encode(), UNWRAP_ONLY)


def test_invalid_yaml_is_an_input_error() -> None:
    """Front matter that is not YAML is reported, never half-mended."""
    text = "---\nk: [https://cors.zfour.workers.dev/?http://a.example/x.jpg\n---\nbody"
    with pytest.raises(InputError, match="not valid YAML"):
        mend(text.encode(), UNWRAP_ONLY)


def test_a_post_whose_front_matter_is_not_yaml_is_refused_even_if_only_its_body_changes() -> None:
    """Mending the body of a post convert cannot read would hide the real problem."""
    text = "---\ntitle: [x\n---\n<img src='//i0.wp.com/a.example/c.jpg'>\n"
    with pytest.raises(InputError, match="not valid YAML"):
        mend(text.encode(), UNWRAP_ONLY)
    assert not mend(b"---\ntitle: [x\n---\nnothing to mend\n", UNWRAP_ONLY).changed
