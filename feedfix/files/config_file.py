"""Finding and reading a config file, as ``serve``, ``check-config`` and the container's
health check all do: ``--config`` or ``FEEDFIX_CONFIG``, over the defaults file that
``FEEDFIX_DEFAULTS`` names (an image's own defaults), under the environment's overrides."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from feedfix.config import DEFAULTS_VARIABLE, Config, defaults_layer, parse_config
from feedfix.core.errors import ConfigError


def config_path(given: str | None, environ: Mapping[str, str]) -> str:
    """``--config``, else ``FEEDFIX_CONFIG``; an error that says so when neither is set."""
    path = given or environ.get("FEEDFIX_CONFIG")
    if not path:
        raise ConfigError("no config: give --config FILE or set FEEDFIX_CONFIG")
    return path


def load_config(path: str, environ: Mapping[str, str]) -> Config:
    """Read and check the config file, over the defaults file ``FEEDFIX_DEFAULTS`` names (an
    image's own defaults) and under the environment's overrides."""
    text = _read_config(path, "start from config.example.toml, or give --config FILE")
    defaults = None
    if defaults_file := environ.get(DEFAULTS_VARIABLE):
        why = f"named by {DEFAULTS_VARIABLE}; unset it, or point it at a file"
        defaults = defaults_layer(
            _read_config(defaults_file, why), defaults_file, _folder(defaults_file)
        )
    return parse_config(
        text, path, environ, base_dir=_folder(path), defaults=defaults, cwd=str(Path.cwd())
    )


def _read_config(path: str, missing: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file ({missing})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc


def _folder(path: str) -> str:
    """The folder of a config file: its relative paths start there."""
    return str(Path(path).resolve().parent)
