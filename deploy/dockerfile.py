"""Read a Dockerfile into the steps that `check_image_recipe.py` replays (standard library only).

Covers the single-stage subset the gateway's image uses and refuses the rest by name, so a
Dockerfile edit the replay cannot follow fails the check instead of being skipped silently.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = ["DockerfileError", "IgnoreRules", "Instruction", "Recipe", "Step", "parse_instructions", "read_recipe"]

#: Docker's default PATH for a Linux image when the base image sets none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Instructions that change nothing the replay can observe.
_INERT = {"LABEL", "MAINTAINER", "STOPSIGNAL", "VOLUME"}


class DockerfileError(ValueError):
    """An instruction the replay does not understand, named with its line."""


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    value: str  # arguments as written, continuations joined
    line: int  # 1-based line of the keyword


@dataclass(frozen=True)
class Step:
    """One build step: `run` (argv or shell string) or `copy` (sources -> destination)."""

    kind: str
    line: int
    env: dict[str, str]
    workdir: str
    user: str
    shell: str | None = None
    argv: list[str] | None = None
    sources: list[str] = field(default_factory=list)
    dest: str = ""


@dataclass
class Recipe:
    base_image: str
    steps: list[Step]
    env: dict[str, str]
    workdir: str
    user: str
    expose: list[int]
    entrypoint: list[str]
    cmd: list[str]
    healthcheck: list[str] | None  # argv ("CMD-SHELL" commands become sh -c)

    @property
    def start_argv(self) -> list[str]:
        return [*self.entrypoint, *self.cmd]


def parse_instructions(text: str) -> list[Instruction]:
    """Split into instructions: comments dropped, backslash continuations joined."""
    out: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # comments inside a continued instruction are dropped by Docker too
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].rstrip())
            continue
        buf.append(stripped)
        joined = " ".join(part for part in buf if part)
        keyword, _, value = joined.partition(" ")
        out.append(Instruction(keyword.upper(), value.strip(), start))
        buf = []
    if buf:
        raise DockerfileError(f"line {start}: instruction ends with a continuation backslash")
    return out


def _json_or_shell(value: str, line: int) -> tuple[list[str] | None, str | None]:
    if value.startswith("["):
        try:
            argv = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DockerfileError(f"line {line}: bad JSON array: {exc}") from None
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise DockerfileError(f"line {line}: exec form must be a JSON array of strings")
        return argv, None
    return None, value


def _expand(value: str, env: dict[str, str]) -> str:
    """`$VAR`, `${VAR}` and `${VAR:-default}` as Docker expands them in ENV, WORKDIR, COPY, USER."""

    def sub(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("bare")
        if m.group("default") is not None:
            return env.get(name) or m.group("default")
        return env.get(name, "")

    pattern = r"\$(?:\{(?P<braced>\w+)(?::-(?P<default>[^}]*))?\}|(?P<bare>\w+))"
    return re.sub(pattern, sub, value)


def _parse_env(value: str, line: int, env: dict[str, str]) -> dict[str, str]:
    words = shlex.split(value, posix=True)
    if words and "=" not in words[0]:  # legacy `ENV KEY value with spaces`
        return {words[0]: _expand(value.split(None, 1)[1] if len(words) > 1 else "", env)}
    pairs = {}
    for word in words:
        key, sep, val = word.partition("=")
        if not sep:
            raise DockerfileError(f"line {line}: ENV expects KEY=VALUE, got {word!r}")
        pairs[key] = _expand(val, {**env, **pairs})
    return pairs


def read_recipe(text: str) -> Recipe:
    instructions = parse_instructions(text)
    if not instructions or instructions[0].keyword not in {"FROM", "ARG"}:
        raise DockerfileError("a Dockerfile starts with FROM")
    env: dict[str, str] = {"PATH": DEFAULT_PATH}
    args: dict[str, str] = {}
    build_args: dict[str, str] = {}
    workdir, user = "/", "0"
    steps: list[Step] = []
    base = ""
    expose: list[int] = []
    entrypoint: list[str] = []
    cmd: list[str] = []
    healthcheck: list[str] | None = None
    for ins in instructions:
        kw, value, line = ins.keyword, ins.value, ins.line
        scope = {**build_args, **env}  # what $VAR means here: ENV wins over ARG
        if kw == "FROM":
            if base:
                raise DockerfileError(f"line {line}: multi-stage builds are not replayed")
            base = _expand(value.split()[0], args)
        elif kw == "ARG":
            name, _, default = value.partition("=")
            # Before FROM: for FROM itself. After: visible to the build steps, not kept in the image.
            (build_args if base else args)[name.strip()] = default.strip()
        elif kw == "ENV":
            env.update(_parse_env(value, line, scope))
        elif kw == "WORKDIR":
            workdir = str(PurePosixPath(workdir) / _expand(value, scope))
        elif kw == "USER":
            user = _expand(value, scope)
        elif kw in {"COPY", "ADD"}:
            words = shlex.split(value)
            flags = [w for w in words if w.startswith("--")]
            if flags:
                raise DockerfileError(f"line {line}: {kw} flags {flags} are not replayed")
            argv, _ = _json_or_shell(value, line)
            words = argv if argv is not None else words
            if len(words) < 2:
                raise DockerfileError(f"line {line}: {kw} needs a source and a destination")
            if kw == "ADD" and any(re.match(r"^\w+://", w) for w in words[:-1]):
                raise DockerfileError(f"line {line}: ADD from a URL is not replayed")
            dest = _expand(words[-1], scope)
            dest_path = dest if dest.startswith("/") else str(PurePosixPath(workdir) / dest)
            if dest.endswith("/") or dest in {".", "./"}:
                dest_path += "/"
            steps.append(Step("copy", line, dict(env), workdir, user,
                              sources=[_expand(w, scope) for w in words[:-1]], dest=dest_path))
        elif kw == "RUN":
            argv, shell = _json_or_shell(value, line)
            if shell is not None and shell.startswith("--"):
                raise DockerfileError(f"line {line}: RUN flags are not replayed")
            steps.append(Step("run", line, scope, workdir, user, shell=shell, argv=argv))
        elif kw == "EXPOSE":
            expose += [int(p.split("/")[0]) for p in value.split()]
        elif kw == "ENTRYPOINT":
            argv, shell = _json_or_shell(value, line)
            entrypoint = argv if argv is not None else ["/bin/sh", "-c", shell or ""]
            cmd = []  # Docker resets CMD when ENTRYPOINT is set
        elif kw == "CMD":
            argv, shell = _json_or_shell(value, line)
            cmd = argv if argv is not None else ["/bin/sh", "-c", shell or ""]
        elif kw == "HEALTHCHECK":
            healthcheck = _healthcheck(value, line)
        elif kw in _INERT:
            continue
        else:
            raise DockerfileError(f"line {line}: {kw} is not replayed")
    return Recipe(base, steps, env, workdir, user, expose, entrypoint, cmd, healthcheck)


def _healthcheck(value: str, line: int) -> list[str] | None:
    if value.upper() == "NONE":
        return None
    m = re.search(r"(?:^|\s)CMD\s+(.*)$", value)
    if m is None:
        raise DockerfileError(f"line {line}: HEALTHCHECK without CMD")
    argv, shell = _json_or_shell(m.group(1).strip(), line)
    return argv if argv is not None else ["/bin/sh", "-c", shell or ""]


class IgnoreRules:
    """`.dockerignore`: which context paths never reach the build."""

    def __init__(self, patterns: list[tuple[str, bool]]) -> None:
        self._patterns = [(self._regex(p), negate) for p, negate in patterns]

    @classmethod
    def load(cls, context: Path) -> IgnoreRules:
        path = context / ".dockerignore"
        patterns = []
        for raw in path.read_text().splitlines() if path.exists() else []:
            line = raw.strip()
            if line and not line.startswith("#"):
                patterns.append((line.lstrip("!").strip("/"), line.startswith("!")))
        return cls(patterns)

    @staticmethod
    def _regex(pattern: str) -> re.Pattern[str]:
        # Docker's matcher: a leading `**/` matches any depth, including none.
        return re.compile(fnmatch.translate(pattern).replace(".*.*/", "(?:.*/)?"))

    def excludes(self, rel: str) -> bool:
        """Whether `rel` (relative to the context, `/`-separated) or a parent of it is ignored."""
        parts = rel.strip("/").split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        result = False
        for regex, negate in self._patterns:
            if any(regex.match(prefix) for prefix in prefixes):
                result = not negate
        return result
