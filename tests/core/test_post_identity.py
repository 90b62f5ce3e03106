"""Posts: front matter with CRLF line ends, and ids that survive edits to the body.

Both were found by mending real trees with ``fix-posts``: a CRLF post was "not a post" to
``convert``, and mending a URL in a post without ``id``/``permalink`` gave it a new id, so
readers would have shown every mended post again as new.
"""

from __future__ import annotations

from datetime import UTC

from feedfix.core.parse.post import looks_like_post, parse_post

POST = "---\ntitle: 苹果发布会\ndate: 2026-11-30 20:00:00\n---\n<p>Hello <img src='{src}'></p>\n"
WRAPPED = "https://cors.zfour.workers.dev/?http://zkres1.myzaker.com/a.jpg"
ORIGIN = "http://zkres1.myzaker.com/a.jpg"


def test_crlf_front_matter_is_a_post() -> None:
    """A post saved with Windows line ends parses like the same post with LF ends."""
    lf = POST.format(src=ORIGIN)
    crlf = lf.replace("\n", "\r\n")
    assert looks_like_post(crlf)
    a, b = parse_post(lf, "a.md", UTC), parse_post(crlf, "a.md", UTC)
    assert (b.title, b.published, b.id) == (a.title, a.published, a.id)
    assert b.content is not None and "Hello" in b.content


def test_mending_the_body_keeps_the_id() -> None:
    """The id of a post without id/permalink does not change when a URL in its body does."""
    before = parse_post(POST.format(src=WRAPPED), "source/_posts/a.md", UTC)
    after = parse_post(POST.format(src=ORIGIN), "source/_posts/a.md", UTC)
    assert before.content != after.content
    assert before.id == after.id


def test_same_title_and_date_in_two_files_are_two_posts() -> None:
    """Two files with the same title and date keep apart by their file names."""
    text = POST.format(src=ORIGIN)
    assert parse_post(text, "a.md", UTC).id != parse_post(text, "b.md", UTC).id


def test_a_post_without_title_or_date_is_identified_by_its_body() -> None:
    """With nothing else to go by, the body tells two such posts apart."""
    one = parse_post("---\ntags: [x]\n---\none\n", "p.md", UTC)
    two = parse_post("---\ntags: [x]\n---\ntwo\n", "p.md", UTC)
    assert one.id != two.id
