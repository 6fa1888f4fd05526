"""Read a YAML file into plain data plus the line and column of every key and value.

Errors here are about the file itself (unreadable, not UTF-8, malformed YAML, duplicate
keys, too large); they come back as `Problem`s, never as tracebacks.

The loader reads YAML 1.1 as YAML 1.2 does for booleans: only `true`/`false` are
booleans, so a country code `NO` or a word `yes` stays a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath

import yaml

from lawful.policy.problems import Path, Problem

MAX_BYTES = 2 * 1024 * 1024  # a policy is a few hundred lines; 2 MiB means the wrong file
MAX_NODES = 200_000  # guards against alias bombs ("billion laughs")

_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, and dates left as text for the models to parse."""


# Dates stay strings so a bad one (2026-13-01) is reported by the model with its
# position, instead of failing inside the YAML constructor.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class Position:
    line: int
    column: int


@dataclass
class YamlDocument:
    data: object
    text: str
    file: str
    keys: dict[Path, Position] = field(default_factory=dict)
    values: dict[Path, Position] = field(default_factory=dict)

    def position(self, path: Path, *, key: bool = False) -> Position | None:
        """Where `path` is written; falls back to the nearest enclosing key that exists."""
        table = self.keys if key else self.values
        if path in table:
            return table[path]
        for cut in range(len(path) - 1, -1, -1):
            prefix = path[:cut]
            if prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return self.values.get(())  # the document itself (a missing top-level key)


class YamlProblem(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def read_bytes(path: str | FsPath) -> bytes:
    """Read a file with the size limit; raise YamlProblem with a clear message."""
    name = str(path)
    p = FsPath(path)
    try:
        if p.is_dir():
            raise YamlProblem(
                Problem(f"{name} is a directory; give the path of a YAML file", file=name)
            )
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise YamlProblem(
                Problem(
                    f"file is {size / 1024 / 1024:.1f} MiB; a policy is at most "
                    f"{MAX_BYTES // 1024 // 1024} MiB — is this the right file?",
                    file=name,
                )
            )
        return p.read_bytes()
    except FileNotFoundError:
        raise YamlProblem(
            Problem("no such file; check the path, or create one with `lawful init`", file=name)
        ) from None
    except PermissionError:
        raise YamlProblem(Problem("permission denied reading the file", file=name)) from None


def parse_yaml(raw: bytes | str, file: str) -> YamlDocument:
    """Decode and parse one YAML document, recording positions. Raises YamlProblem."""
    text = _decode(raw, file) if isinstance(raw, bytes) else raw
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlProblem(
            Problem(f"text is larger than {MAX_BYTES // 1024 // 1024} MiB", file=file)
        )
    if not text.strip() or all(
        not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
    ):
        raise YamlProblem(
            Problem("the file is empty; write a policy (`lawful init` makes a starter)", file=file)
        )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise YamlProblem(Problem("the file holds no YAML document", file=file))
        doc = YamlDocument(data=None, text=text, file=file)
        _walk(node, (), doc, counter=[0], seen={})
        doc.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(s for s in (exc.context, exc.problem) if s)
        raise YamlProblem(
            Problem(
                f"malformed YAML: {what}; check indentation, colons and quotes near here",
                file=file,
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
            )
        ) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(Problem(f"malformed YAML: {exc}", file=file)) from None
    except (ValueError, TypeError) as exc:  # a tagged value that cannot be built (!!binary ...)
        raise YamlProblem(Problem(f"malformed YAML value: {exc}", file=file)) from None
    except RecursionError:
        raise YamlProblem(Problem("YAML is nested too deeply", file=file)) from None
    finally:
        loader.dispose()
    return doc


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise YamlProblem(
            Problem(
                f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8",
                file=file,
                line=line,
                column=column,
            )
        ) from None


def _pos(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _walk(
    node: yaml.Node, path: Path, doc: YamlDocument, counter: list[int], seen: dict[int, int]
) -> None:
    """Record positions and reject duplicate keys; count nodes as expanded by aliases."""
    # An aliased node is walked once; its expanded size is added again for each reuse,
    # so an alias bomb is refused before anything builds its expansion.
    if id(node) in seen:
        counter[0] += seen[id(node)]
        _check_size(counter[0], node, doc.file)
        return
    start = counter[0]
    counter[0] += 1
    _check_size(counter[0], node, doc.file)
    doc.values.setdefault(path, _pos(node))
    if isinstance(node, yaml.MappingNode):
        written: dict[object, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                _walk(value_node, path, doc, counter, seen)
                continue
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
            if key in written:
                first = _pos(written[key])
                raise YamlProblem(
                    Problem(
                        f"duplicate key '{key}' (first written at line {first.line}); "
                        "keep one of them",
                        path=path,
                        file=doc.file,
                        line=_pos(key_node).line,
                        column=_pos(key_node).column,
                    )
                )
            written[key] = key_node
            child = (*path, key)
            doc.keys.setdefault(child, _pos(key_node))
            _walk(value_node, child, doc, counter, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), doc, counter, seen)
    seen[id(node)] = counter[0] - start


def _check_size(count: int, node: yaml.Node, file: str) -> None:
    if count > MAX_NODES:
        pos = _pos(node)
        raise YamlProblem(
            Problem(
                f"the document expands to more than {MAX_NODES} values (aliases reused too "
                "often); write the values out or use fewer aliases",
                file=file,
                line=pos.line,
                column=pos.column,
            )
        )
