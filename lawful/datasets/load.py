"""Load a dataset annotation file: read YAML, validate its shape, check it whole.

Like a policy, a bad annotation is rejected whole, every problem at once, each as
`file:line:col path: what; fix`. With a policy, the categories and the rules that keep
data are checked against it; the live database is checked separately
(`lawful.datasets.live`), since a file can be checked before its database exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from lawful.datasets.checks import check_dataset
from lawful.datasets.model import Dataset, Table
from lawful.policy import Policy
from lawful.policy.load import dedupe_problems, place_problem, validation_problems
from lawful.policy.problems import PolicyError, Problem, sort_problems
from lawful.policy.vocabulary import describe
from lawful.policy.yamlfile import YamlDocument, YamlProblem, parse_yaml, read_bytes


class DatasetError(PolicyError):
    """A dataset annotation was rejected; `problems` lists every error found at once."""

    document = "dataset"


@dataclass(frozen=True)
class LoadedDataset:
    """A valid annotation with where it came from, to place later problems in the file."""

    dataset: Dataset
    doc: YamlDocument
    warnings: tuple[Problem, ...] = ()

    @property
    def file(self) -> str:
        return self.doc.file

    @property
    def key(self) -> str:
        return self.dataset.key

    def place(self, problem: Problem) -> Problem:
        """`problem` (found later, e.g. against the live schema) with its file position."""
        return place_problem(problem, self.doc)


def load_dataset(path: str | FsPath, policy: Policy | None = None) -> LoadedDataset:
    """Load and check the annotation file at `path`; raise DatasetError on any error."""
    name = str(path)
    try:
        doc = parse_yaml(read_bytes(path), name)
    except YamlProblem as exc:
        raise DatasetError([_about_dataset(exc.problem)]) from None
    return _load(doc, policy)


def load_dataset_text(
    text: str, file: str = "<dataset>", policy: Policy | None = None
) -> LoadedDataset:
    """Like `load_dataset`, for text already in memory."""
    try:
        doc = parse_yaml(text, file)
    except YamlProblem as exc:
        raise DatasetError([_about_dataset(exc.problem)]) from None
    return _load(doc, policy)


def _about_dataset(problem: Problem) -> Problem:
    # The YAML reader's hints speak of policies (`lawful init` makes one); not here.
    message = problem.message.replace(
        "write a policy (`lawful init` makes a starter)",
        "write a dataset annotation (`lawful scan DB_URL -o FILE` drafts one)",
    ).replace("or create one with `lawful init`", "or draft one with `lawful scan`")
    message = message.replace("a policy is at most", "a dataset file is at most")
    return Problem(
        message,
        path=problem.path,
        file=problem.file,
        line=problem.line,
        column=problem.column,
        severity=problem.severity,
    )


def _load(doc: YamlDocument, policy: Policy | None) -> LoadedDataset:
    data = doc.data
    if not isinstance(data, dict):
        raise DatasetError(
            [
                Problem(
                    "a dataset file is a mapping (lawful:, dataset:, connection:, tables:), "
                    f"but the file holds {describe(data)}",
                    file=doc.file,
                    line=1,
                    column=1,
                )
            ]
        )
    problems: list[Problem] = []
    dataset: Dataset | None = None
    try:
        dataset = Dataset.model_validate(data)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, doc, Dataset))
    raw_tables = data.get("tables")
    written = frozenset(str(k) for k in raw_tables) if isinstance(raw_tables, dict) else frozenset()
    for problem in check_dataset(dataset or _partial(data), policy, written):
        problems.append(place_problem(problem, doc))
    problems = dedupe_problems(sort_problems(problems))
    if any(p.severity == "error" for p in problems):
        raise DatasetError(problems)
    assert dataset is not None
    return LoadedDataset(dataset=dataset, doc=doc, warnings=tuple(problems))


def _partial(data: dict[str, Any]) -> Dataset:
    """The tables that validate on their own, for the cross-checks when others have errors.

    Tables with errors of their own are left out; `check_dataset` is told every table
    name written, so a link to one of them is not also reported as undeclared.
    """
    tables: dict[str, Table] = {}
    raw = data.get("tables")
    if isinstance(raw, dict):
        for name, entry in raw.items():
            try:
                tables[str(name)] = Table.model_validate(entry)
            except ValidationError:
                continue
    return Dataset.model_construct(
        lawful=1, dataset=str(data.get("dataset") or "dataset"), connection=None, tables=tables
    )
