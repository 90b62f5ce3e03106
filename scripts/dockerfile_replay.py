"""Read the Dockerfile so that scripts/docker-steps.sh can replay it without Docker.

The shell script owns the steps; this file parses, so that the image and its replay share one
source of truth: the builder stage's COPY and RUN lines, the runtime stage's ENV, WORKDIR,
VOLUME, EXPOSE, USER, HEALTHCHECK, ENTRYPOINT and CMD. (Plus three small helpers for the
script: a test copy of a config, a free port, and reading /healthz.)

Container paths become host paths under a root folder (``--root``): in ENV values every
``:``-separated part that starts with ``/`` is prefixed with the root before ``$VAR``
references are expanded, so ``PATH=/opt/venv/bin:$PATH`` becomes ``ROOT/opt/venv/bin:`` and
then the host's PATH (which stands in for the base image's). Builder RUN lines run as written,
so they must name paths through such variables; a literal absolute path there is an error.

    python3 scripts/dockerfile_replay.py build --root R --context .   # sh script: builder stage
    python3 scripts/dockerfile_replay.py runtime --root R             # bash: DF_* variables
    python3 scripts/dockerfile_replay.py check                        # consistency checks
    python3 scripts/dockerfile_replay.py config --source F --url U --storage P   # test config
    python3 scripts/dockerfile_replay.py free-port
    python3 scripts/dockerfile_replay.py first-error --url http://127.0.0.1:PORT/healthz

Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import re
import shlex
import socket
import sys
import time
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_CONTINUATION = re.compile(r"\\[ \t]*$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")


class ReplayError(Exception):
    """A Dockerfile this replay cannot follow; the message is the one-line reason."""


@dataclass
class Instruction:
    """One Dockerfile instruction: its keyword, its text (continuations joined) and line."""

    keyword: str
    text: str
    line: int


@dataclass
class Stage:
    """The instructions of one ``FROM`` to the next."""

    base: str
    name: str
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        """This stage's instructions with that keyword, in order."""
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        """The one that counts, for instructions where the last one wins."""
        found = self.all(keyword)
        return found[-1] if found else None


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults and the stages, with Docker's line continuation rules."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # comments (and parser directives) vanish, even inside a continuation
        if not stripped:
            continue  # an empty line inside a continuation
        line = raw if pending else raw.lstrip()
        if not pending:
            start = number
        # As Docker does: drop the backslash (and blanks after it) and join the lines as they are.
        continued = _CONTINUATION.search(line)
        pending.append(line[: continued.start()] if continued else line)
        if continued:
            continue
        joined = "".join(pending).strip()
        pending = []
        keyword, _, rest = joined.partition(" ")
        if rest.lstrip().startswith("<<"):
            raise ReplayError(f"line {start}: heredocs are not supported by the replay")
        instructions.append(Instruction(keyword.upper(), rest.strip(), start))
    if pending:
        raise ReplayError("the last instruction ends in a line continuation")

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            words = [w for w in ins.text.split() if not w.startswith("--")]
            base = expand(words[0], global_args, {})
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(base, name, ins.line))
        elif not stages and ins.keyword == "ARG":
            key, _, value = ins.text.partition("=")
            global_args[key.strip()] = unquote(value.strip())
        elif not stages:
            raise ReplayError(f"line {ins.line}: {ins.keyword} before the first FROM")
        else:
            stages[-1].instructions.append(ins)
    if not stages:
        raise ReplayError("no FROM instruction")
    return global_args, stages


def unquote(value: str) -> str:
    """A single shell-style word without its quotes."""
    words = shlex.split(value) if value else [""]
    return words[0] if words else ""


def expand(value: str, *scopes: dict[str, str]) -> str:
    """``$VAR`` and ``${VAR}`` from the first scope that has them, else empty."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        for scope in scopes:
            if name in scope:
                return scope[name]
        return ""

    return _VAR.sub(one, value)


def key_values(ins: Instruction) -> list[tuple[str, str]]:
    """The pairs of an ENV, LABEL or ARG instruction (``K=V …`` or the legacy ``K V``)."""
    words = shlex.split(ins.text)
    if words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise ReplayError(f"line {ins.line}: cannot read {word!r} in {ins.keyword}")
        pairs.append((key, value))
    return pairs


class Env:
    """A stage's environment twice: as in the container and relocated under the root."""

    def __init__(self, root: str, host: dict[str, str]) -> None:
        self.root = root.rstrip("/")
        self.host = host
        self.container: dict[str, str] = {}
        self.mapped: dict[str, str] = {}

    def relocate(self, path: str) -> str:
        """A container path as a host path under the root."""
        return self.root + path if path.startswith("/") else path

    def set(self, key: str, raw: str) -> None:
        """ENV key=raw: expand against earlier values (the host's standing in for the base)."""
        self.container[key] = expand(raw, self.container, self.host)
        parts = [self.relocate(part) for part in raw.split(":")]
        self.mapped[key] = ":".join(expand(part, self.mapped, self.host) for part in parts)

    def path(self, value: str, workdir: str) -> str:
        """A WORKDIR or COPY destination, in container terms (relative to ``workdir``)."""
        value = expand(value, self.container, self.host)
        return posixpath.normpath(posixpath.join(workdir, value))


def stage_named(stages: list[Stage], name: str) -> Stage:
    """The stage with that name (``--from``/``AS``) or index."""
    for stage in stages:
        if stage.name == name:
            return stage
    raise ReplayError(f"no stage named {name!r}")


def dockerignore(context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """The .dockerignore patterns as (exception?, regex), Docker's matching rules."""
    path = context / ".dockerignore"
    rules: list[tuple[bool, re.Pattern[str]]] = []
    if not path.exists():
        return rules
    for line in path.read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = posixpath.normpath(pattern.lstrip("!").strip()).lstrip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[" and "]" in pattern[i:]:
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1].replace("[!", "[^"), end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(regex)))
    return rules


def ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the file is left out of the build context (the last matching pattern wins)."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negate, regex in rules:
        if any(regex.fullmatch(c) for c in candidates):
            result = not negate
    return result


def copy_commands(ins: Instruction, env: Env, workdir: str, context: Path) -> list[str]:
    """Shell commands that do what a COPY from the build context does."""
    words = json.loads(ins.text) if ins.text.startswith("[") else shlex.split(ins.text)
    flags = [w for w in words if w.startswith("--")]
    if any(f.startswith("--from") for f in flags):
        raise ReplayError(f"line {ins.line}: COPY --from in the builder stage is not supported")
    *sources, dest = [w for w in words if not w.startswith("--")]
    target = env.path(dest, workdir)
    into_dir = dest.endswith("/") or len(sources) > 1
    rules = dockerignore(context)
    commands = []
    for source in sources:
        matches = sorted(context.glob(expand(source, env.container, env.host)))
        if not matches:
            raise ReplayError(f"line {ins.line}: COPY source {source!r} not in the context")
        for match in matches:
            base = posixpath.join(target, match.name) if into_dir else target
            files = [match] if match.is_file() else sorted(p for p in match.rglob("*"))
            for file in files:
                if not file.is_file():
                    continue
                relative = file.relative_to(context).as_posix()
                if ignored(relative, rules):
                    continue
                inside = file.relative_to(match).as_posix() if match.is_dir() else ""
                host = env.relocate(posixpath.join(base, inside) if inside else base)
                commands.append(
                    f"mkdir -p {shlex.quote(posixpath.dirname(host))}"
                    f" && cp {shlex.quote(str(file))} {shlex.quote(host)}"
                )
    if not commands:
        raise ReplayError(f"line {ins.line}: COPY copies nothing (all of it is .dockerignored?)")
    return commands


def build_script(stages: list[Stage], root: str, context: Path, stage_name: str) -> str:
    """A POSIX sh script that replays one stage: ENV, ARG, WORKDIR, COPY and RUN, in order."""
    stage = stage_named(stages, stage_name)
    env = Env(root, dict(os.environ))
    workdir = "/"
    out = ["set -eu", f"# replay of stage {stage.name!r} (FROM {stage.base})"]
    for ins in stage.instructions:
        if ins.keyword in {"ENV", "ARG"}:
            for key, value in key_values(ins):
                env.set(key, value)
                out.append(f"export {key}={shlex.quote(env.mapped[key])}")
        elif ins.keyword == "WORKDIR":
            workdir = env.path(ins.text, workdir)
            host = shlex.quote(env.relocate(workdir))
            out.append(f"mkdir -p {host} && cd {host}")
        elif ins.keyword == "COPY":
            out.append(f"echo {shlex.quote(f'+ COPY {ins.text}')} >&2")
            out.extend(copy_commands(ins, env, workdir, context))
        elif ins.keyword == "RUN":
            if ins.text.startswith("--"):
                raise ReplayError(f"line {ins.line}: RUN flags are not supported by the replay")
            if ins.text.startswith("["):
                command = " ".join(shlex.quote(w) for w in json.loads(ins.text))
            else:
                literal = literal_path(ins.text)
                if literal:
                    raise ReplayError(
                        f"line {ins.line}: RUN names the path {literal} literally; "
                        "set it with ENV and use the variable so the replay can relocate it"
                    )
                command = "sh -c " + shlex.quote(ins.text)
            out.append(f"echo {shlex.quote('+ RUN ' + ins.text)} >&2")
            out.append(command)
        elif ins.keyword in {"LABEL", "EXPOSE", "VOLUME", "USER", "HEALTHCHECK"}:
            continue  # metadata: nothing to replay in a builder
        else:
            raise ReplayError(f"line {ins.line}: {ins.keyword} in stage {stage.name!r} unsupported")
    return "\n".join(out) + "\n"


def literal_path(command: str) -> str | None:
    """The first absolute path written out in a shell command (not through a variable)."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    for word in words:
        for part in re.split(r"[=:]", word):
            if part.startswith("/"):
                return part
    return None


def exec_form(ins: Instruction | None, what: str) -> list[str]:
    """The argv of an ENTRYPOINT, CMD or HEALTHCHECK CMD, which must be in exec (JSON) form."""
    if ins is None:
        return []
    text = ins.text
    if ins.keyword == "HEALTHCHECK":
        text = re.sub(r"^(?:--\S+\s+)*CMD\s+", "", text)
    try:
        words = json.loads(text)
    except json.JSONDecodeError:
        raise ReplayError(f"line {ins.line}: {what} is not in exec (JSON) form") from None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ReplayError(f"line {ins.line}: {what} is not a JSON list of strings")
    return words


def seconds(text: str) -> float:
    """A simple Docker duration (``30s``, ``5m``; not compound ones like ``1m30s``) in seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ReplayError(f"cannot read the duration {text!r}")
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    return float(match.group(1)) * factor


@dataclass
class Runtime:
    """What the final stage says about how the container runs."""

    base: str
    env: dict[str, str]  # relocated under the root
    env_container: dict[str, str]  # as in the container ($PATH: the host's, for the base's)
    workdir: str
    workdir_container: str
    volumes: list[str]
    volumes_container: list[str]
    expose: list[str]
    user: str
    healthcheck: list[str]
    hc_timeout: float
    hc_start_period: float
    command: list[str]  # ENTRYPOINT + CMD
    kept: list[str]  # what COPY --from takes from the builder (to the same path)


def runtime(stages: list[Stage], root: str) -> Runtime:
    """Read the final stage."""
    stage = stages[-1]
    env = Env(root, dict(os.environ))
    workdir = "/"
    for ins in stage.instructions:
        if ins.keyword == "ENV":
            for key, value in key_values(ins):
                env.set(key, value)
        elif ins.keyword == "WORKDIR":
            workdir = env.path(ins.text, workdir)
    health = stage.last("HEALTHCHECK")
    options = dict(re.findall(r"--([\w-]+)=(\S+)", health.text)) if health else {}
    volumes: list[str] = []
    for ins in stage.all("VOLUME"):
        volumes += json.loads(ins.text) if ins.text.startswith("[") else ins.text.split()
    user = stage.last("USER")
    kept = []
    for ins in stage.all("COPY"):
        words = shlex.split(ins.text)
        if not any(w.startswith("--from=") for w in words):
            raise ReplayError(f"line {ins.line}: the replay can only COPY --from the builder")
        *sources, dest = [w for w in words if not w.startswith("--")]
        if sources != [dest]:
            raise ReplayError(
                f"line {ins.line}: COPY --from must keep the path (a venv is not relocatable)"
            )
        kept.append(dest.rstrip("/"))
    return Runtime(
        base=stage.base,
        env=env.mapped,
        env_container=env.container,
        workdir=env.relocate(workdir),
        workdir_container=workdir,
        volumes=[env.relocate(v) for v in volumes],
        volumes_container=volumes,
        expose=[p.split("/")[0] for i in stage.all("EXPOSE") for p in i.text.split()],
        user=user.text if user else "",
        healthcheck=exec_form(health, "HEALTHCHECK"),
        hc_timeout=seconds(options.get("timeout", "30s")),
        hc_start_period=seconds(options.get("start-period", "0s")),
        command=exec_form(stage.last("ENTRYPOINT"), "ENTRYPOINT")
        + exec_form(stage.last("CMD"), "CMD"),
        kept=kept,
    )


def bash_assignments(info: Runtime) -> str:
    """The runtime facts as bash variables (arrays for lists) for ``eval``: DF_ENV, DF_…"""
    lines = []
    for key, value in vars(info).items():
        name = "DF_" + key.upper()
        if key == "env_container":
            continue  # its PATH is the host's; only the checks want it
        if isinstance(value, dict):
            items = " ".join(shlex.quote(f"{k}={v}") for k, v in value.items())
            lines.append(f"{name}=({items})")
        elif isinstance(value, list):
            lines.append(f"{name}=({' '.join(shlex.quote(str(v)) for v in value)})")
        else:
            lines.append(f"{name}={shlex.quote(str(value))}")
    return "\n".join(lines) + "\n"


def check(stages: list[Stage]) -> list[str]:
    """Ways the Dockerfile can contradict itself that hadolint does not look for."""
    problems = []
    info = runtime(stages, "")
    env = info.env_container
    if len({s.base for s in stages}) != 1:
        problems.append("the stages are not all FROM the same base image")
    if any(s.base.endswith(":latest") or ":" not in s.base for s in stages):
        problems.append("the base image is not pinned to a tag")
    if info.user.split(":")[0] in {"", "0", "root"}:
        problems.append("the runtime stage runs as root (no USER, or USER root)")
    port = env.get("FEEDFIX_SERVER__PORT", "")
    if [port] != info.expose:
        problems.append(f"EXPOSE {info.expose} is not FEEDFIX_SERVER__PORT={port!r}")
    store = env.get("FEEDFIX_STORAGE__PATH", "")
    if not any(store.startswith(v.rstrip("/") + "/") for v in info.volumes_container):
        problems.append(f"FEEDFIX_STORAGE__PATH={store!r} is not on a VOLUME")
    if not info.healthcheck:
        problems.append("no HEALTHCHECK")
    if not info.command:
        problems.append("no ENTRYPOINT/CMD")
    if env.get("PYTHONDONTWRITEBYTECODE") != "1":
        problems.append("PYTHONDONTWRITEBYTECODE=1 is not set (the root filesystem is read-only)")
    if not env.get("FEEDFIX_CONFIG"):
        problems.append("FEEDFIX_CONFIG is not set")
    return problems


def test_config(source: Path, url: str, storage: str) -> str:
    """``source`` with every feed URL set to ``url`` and the store at ``storage`` (TOML out)."""
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    data.setdefault("storage", {})["path"] = storage
    for feed in data.get("feeds", []):
        feed["url"] = url
    out = []
    for section in ("server", "storage"):
        out.append(f"[{section}]")
        out += [f"{k} = {json.dumps(v)}" for k, v in data.get(section, {}).items()]
        out.append("")
    for feed in data.get("feeds", []):
        out.append("[[feeds]]")
        out += [f"{k} = {json.dumps(v)}" for k, v in feed.items()]
        out.append("")
    unknown = set(data) - {"server", "storage", "feeds"}
    if unknown:
        raise ReplayError(f"{source}: keys the test config cannot copy: {sorted(unknown)}")
    return "\n".join(out)


def first_error(url: str, timeout: float) -> str | None:
    """Poll ``/healthz`` until some feed's ``last_error`` is set; that error, or None."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with opener.open(url, timeout=5) as answer:
            body = json.load(answer)
        stack = [body]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                if item.get("last_error"):
                    return f"{item.get('name', '?')}: {item['last_error']}"
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        time.sleep(0.5)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and print what was asked for."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dockerfile", type=Path, default=Path("Dockerfile"))
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="sh script replaying the builder stage")
    build.add_argument("--root", required=True)
    build.add_argument("--context", type=Path, default=Path())
    build.add_argument("--stage", default="builder")
    run = commands.add_parser("runtime", help="bash DF_* variables for the final stage")
    run.add_argument("--root", required=True)
    commands.add_parser("check", help="consistency checks; prints problems, exit 1 if any")
    config = commands.add_parser("config", help="a test copy of a config file")
    config.add_argument("--source", type=Path, required=True)
    config.add_argument("--url", required=True)
    config.add_argument("--storage", required=True)
    commands.add_parser("free-port", help="a free TCP port on 127.0.0.1")
    errors = commands.add_parser("first-error", help="wait for a feed's last_error in /healthz")
    errors.add_argument("--url", required=True)
    errors.add_argument("--timeout", type=float, default=15.0)
    args = parser.parse_args(argv)
    try:
        if args.command == "free-port":
            print(free_port())
            return 0
        if args.command == "first-error":
            error = first_error(args.url, args.timeout)
            print(error or f"no feed reported an error within {args.timeout:g} s")
            return 0 if error else 1
        if args.command == "config":
            print(test_config(args.source, args.url, args.storage))
            return 0
        _, stages = parse(args.dockerfile.read_text(encoding="utf-8"))
        if args.command == "build":
            context = args.context.resolve()
            print(build_script(stages, args.root, context, args.stage), end="")
        elif args.command == "runtime":
            print(bash_assignments(runtime(stages, args.root)), end="")
        else:
            problems = check(stages)
            for problem in problems:
                print(f"{args.dockerfile}: {problem}", file=sys.stderr)
            return 1 if problems else 0
    except (ReplayError, OSError, ValueError) as exc:
        print(f"{args.dockerfile}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
