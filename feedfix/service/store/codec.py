"""Entries to JSON and back, for the entry archive. Pure and lossless for the model."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from feedfix.core.model import Category, Entry, Link, Media, Person


def _date(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def entry_to_json(entry: Entry) -> str:
    """A compact JSON text of every field of the entry."""
    data = asdict(entry)
    for key in ("published", "updated"):
        value = data[key]
        data[key] = value.isoformat() if value else None
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def entry_from_json(text: str) -> Entry:
    """The entry ``entry_to_json`` wrote."""
    data: dict[str, Any] = json.loads(text)
    return Entry(
        id=data.get("id"),
        title=data.get("title"),
        links=tuple(Link(**x) for x in data.get("links") or ()),
        content=data.get("content"),
        summary=data.get("summary"),
        authors=tuple(Person(**x) for x in data.get("authors") or ()),
        categories=tuple(Category(**x) for x in data.get("categories") or ()),
        published=_date(data.get("published")),
        updated=_date(data.get("updated")),
        media=tuple(Media(**x) for x in data.get("media") or ()),
        lang=data.get("lang"),
        base=data.get("base"),
        rights=data.get("rights"),
    )
