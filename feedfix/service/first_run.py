"""A first run's mistakes in one line each: what went wrong and which setting to change,
starting from the one that decided it (the file, an environment variable, a default)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from feedfix.config import Config
from feedfix.core.errors import ConfigError


def unwritable(config_file: str, config: Config, exc: Exception) -> ConfigError:
    """Why a SQLite file cannot be opened, in one line that says what to change."""
    path = config.storage.path
    folder = next(p for p in Path(path).resolve().parents if p.exists())
    if not folder.is_dir():
        why: object = f"{folder} is a file, not a folder"
    elif not os.access(folder, os.W_OK):
        why = f"the folder {folder} is not writable"
    else:
        why = exc
    change = _change(config, "storage.path", config_file, "/data/feedfix.db")
    return ConfigError(
        f"[storage] path {path}: cannot open the store: {why}; make it a file in a folder "
        f"feedfix can write: {change}"
    )


def listen_error(config_file: str, config: Config, exc: OSError) -> str:
    """Why the server cannot listen, in one line that says what to change: the setting that
    decided the address (the file, an environment variable, or a default)."""
    where = f"{config.server.host}:{config.server.port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: port {config.server.port} is already in use (another "
            f"feedfix?); stop that program, or choose another port: "
            f"{_change(config, 'server.port', config_file, '8081')}"
        )
    return (
        f"cannot listen on {where}: {exc.strerror or exc} (the host comes from "
        f"{_decided(config, 'server.host')}; see [server] in {config_file})"
    )


def _decided(config: Config, key: str) -> str:
    """Who set a section key, in words: "[server] port in FILE", "FEEDFIX_SERVER__PORT",
    "the default of FEEDFIX_DEFAULTS=FILE", "feedfix's default"."""
    origin = config.origin(key)
    kind, _, detail = origin.partition(": ")
    section, _, name = key.partition(".")
    if kind == "file":
        return f"[{section}] {name} in {detail}"
    if kind == "environment":
        return f"{detail} in the environment"
    if kind == "command line":
        return detail
    return f"the default of {detail}" if detail else "feedfix's default"


def _change(config: Config, key: str, config_file: str, example: str) -> str:
    """How to change a section key, starting from the setting that decided it."""
    section, _, name = key.partition(".")
    variable = f"FEEDFIX_{section.upper()}__{name.upper()}"
    kind = config.origin(key).partition(": ")[0]
    if kind == "environment":
        return f"{variable} in the environment decided it: change or unset that variable"
    if kind == "file":
        return f"[{section}] {name} in {config_file}, or {variable}={example}"
    return (
        f"{_decided(config, key)} decided it: set [{section}] {name} in {config_file}, "
        f"or {variable}={example}"
    )
