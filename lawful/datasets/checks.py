"""Checks across a dataset annotation, and against the policy when one is given.

Each check yields `Problem`s with a key path; the loader adds file, line and column.
They run on a dataset whose tables may be partly missing (when some had errors of their
own), and are told every table name written so nothing is reported twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from lawful.datasets.model import ColumnErase, Dataset, Table, TableErase
from lawful.policy import Policy
from lawful.policy.model import RetentionRule
from lawful.policy.problems import Path, Problem
from lawful.policy.taxonomy import Taxonomy, load_taxonomy
from lawful.policy.vocabulary import did_you_mean

# Categories of data about the system, not about a person: no purpose needs to declare them.
NON_PERSONAL = ("system",)


def check_dataset(
    dataset: Dataset, policy: Policy | None = None, written: Iterable[str] = ()
) -> Iterator[Problem]:
    """Every problem with `dataset` as a whole (and against `policy`, when given)."""
    tables = dataset.tables or {}
    names = frozenset(written) | frozenset(tables)
    yield from _links(tables, names)
    yield from _reachable(tables)
    for name, table in tables.items():
        yield from _table_actions(name, table)
    taxonomy = policy.taxonomy() if policy is not None else load_taxonomy()
    yield from _categories(tables, taxonomy, policy)
    yield from _rules(tables, policy)
    yield from _retention(tables, policy)
    if policy is not None:
        yield from _subjects(tables, policy)


def is_personal(category: str | None) -> bool:
    """Whether a column of this category holds personal data (anything but system.*)."""
    if category is None:
        return False
    return category.split(".", 1)[0] not in NON_PERSONAL


def _error(path: Path, message: str) -> Problem:
    return Problem(message, path=path)


def _warning(path: Path, message: str) -> Problem:
    return Problem(message, path=path, severity="warning")


def _links(tables: dict[str, Table], names: frozenset[str]) -> Iterator[Problem]:
    for name, table in tables.items():
        for i, link in enumerate(table.owners):
            path: Path = ("tables", name, "owners", i, "table")
            if link.table not in names:
                guess = did_you_mean(link.table, names)
                hint = (
                    f"did you mean '{guess}'?"
                    if guess
                    else "annotate that table too, or link to one that is annotated"
                )
                yield _error(path, f"'{link.table}' is not a table of this dataset; {hint}")


def _reachable(tables: dict[str, Table]) -> Iterator[Problem]:
    if tables and not any(t.identities for t in tables.values()):
        yield _error(
            ("tables",),
            "no table has identities: name the columns that hold an email, phone or id "
            "(e.g. identities: {email: email}) so a subject's rows can be found",
        )
        return
    reached = {name for name, t in tables.items() if t.identities}
    grew = True
    while grew:
        grew = False
        for name, table in tables.items():
            if name not in reached and any(link.table in reached for link in table.owners):
                reached.add(name)
                grew = True
    for name, table in tables.items():
        if name not in reached and table.owners:
            yield _warning(
                ("tables", name, "owners"),
                "no chain of owners leads from a table with identities to this one, so its "
                "rows are never found; link it to a table that is reached",
            )


def _table_actions(name: str, table: Table) -> Iterator[Problem]:
    for column, spec in table.columns.items():
        path: Path = ("tables", name, "columns", column, "erase")
        if spec.erase is None:
            continue
        if table.deletes and spec.erase is ColumnErase.keep:
            yield _error(
                path,
                "this column is kept, but erasure deletes the table's rows; set the table's "
                "erase to anonymize (so the row stays) or keep",
            )
        elif table.erase is TableErase.keep and spec.erase is not ColumnErase.keep:
            yield _warning(
                path,
                "the table's rows are kept whole (erase: keep), so this column's action "
                "never applies; set the table's erase to anonymize to apply it",
            )
        elif table.erase is TableErase.delete and spec.erase is not ColumnErase.delete:
            yield _warning(
                path,
                "the table's rows are deleted (erase: delete, the default), so this "
                "column's action never applies; set the table's erase to anonymize",
            )


def _categories(
    tables: dict[str, Table], taxonomy: Taxonomy, policy: Policy | None
) -> Iterator[Problem]:
    declared = _declared_categories(policy) if policy is not None else None
    for name, table in tables.items():
        for column, spec in table.columns.items():
            key = spec.category
            if key is None:
                continue
            path: Path = ("tables", name, "columns", column, "category")
            if not taxonomy.is_category(key):
                guess = did_you_mean(key, taxonomy.categories)
                hint = (
                    f"did you mean '{guess}'?"
                    if guess
                    else "use a fideslang key (e.g. user.contact.email) or declare a custom "
                    "one under the policy's categories"
                )
                yield _error(path, f"'{key}' is not a data category; {hint}")
                continue
            if declared is None or not is_personal(key):
                continue
            if not any(taxonomy.covers(general, key) for general in declared):
                yield _error(
                    path,
                    f"no purpose of the policy declares '{key}': add it (or a category "
                    "above it) to the categories of the purposes that use it",
                )


def _declared_categories(policy: Policy) -> set[str]:
    return {key for purpose in policy.purposes.values() for key in purpose.categories}


def _rule_names(policy: Policy) -> list[str]:
    """Named retention rules, and purposes whose rule is written inline (by purpose name)."""
    inline = [name for name, p in policy.purposes.items() if isinstance(p.retention, RetentionRule)]
    return sorted({*policy.retention, *inline})


def find_rule(policy: Policy, name: str) -> RetentionRule | None:
    """The rule a dataset names: one under retention, else a purpose's inline rule."""
    if name in policy.retention:
        return policy.retention[name]
    purpose = policy.purposes.get(name)
    if purpose is not None and isinstance(purpose.retention, RetentionRule):
        return purpose.retention
    return None


def _clock_path(
    tables: dict[str, Table], name: str, path: Path, hops: tuple[str, ...]
) -> Iterator[Problem]:
    current = name
    for hop in hops:
        table = tables.get(current)
        if table is None:
            return  # reported elsewhere
        targets = list(dict.fromkeys(link.table for link in table.owners))
        if hop not in targets:
            hint = (
                f"its owner links reach: {', '.join(targets)}"
                if targets
                else "it has no owner links; count from a column of this table"
            )
            yield _error(
                (*path, "from"),
                f"'{hop}' is not a table {current} is linked to by an owner link; {hint}",
            )
            return
        current = hop


def _rule_fits(path: Path, table: Table, rule: RetentionRule) -> Iterator[Problem]:
    if rule.keep is None:
        yield _error(
            (*path, "rule"),
            "this rule has no fixed period (only criteria), so no sweep can apply it; give "
            "the rule a keep: period in the policy, or remove it here",
        )
    if rule.then.value == "anonymize" and table.erase is TableErase.keep:
        yield _error(
            (*path, "rule"),
            "this rule anonymizes, but erasure keeps the table's rows whole (erase: keep), "
            "so there are no masks to apply; set the table's erase to anonymize with column "
            "masks, or apply a rule that deletes",
        )


def _rules(tables: dict[str, Table], policy: Policy | None) -> Iterator[Problem]:
    known = _rule_names(policy) if policy is not None else None
    for name, table in tables.items():
        keeps: list[tuple[Path, str | None]] = []
        if table.erase is TableErase.keep:
            keeps.append((("tables", name), table.rule))
        for column, spec in table.columns.items():
            if spec.erase is ColumnErase.keep:
                keeps.append((("tables", name, "columns", column), spec.rule))
        for path, rule in keeps:
            if known is None:
                continue
            if rule is None:
                hint = f"one of: {', '.join(known)}" if known else "declare one under retention"
                yield _error(
                    (*path, "erase"),
                    f"data kept after erasure must be backed by a retention rule of the "
                    f"policy: add rule: <name> ({hint})",
                )
            elif rule not in known:
                guess = did_you_mean(rule, known)
                hint = f"did you mean '{guess}'?" if guess else "declare it under retention"
                yield _error(
                    (*path, "rule"), f"'{rule}' is not a retention rule of the policy; {hint}"
                )


def _subjects(tables: dict[str, Table], policy: Policy) -> Iterator[Problem]:
    kinds = sorted(policy.subjects)
    for name, table in tables.items():
        if table.subject is not None and table.subject not in policy.subjects:
            guess = did_you_mean(table.subject, kinds)
            hint = f"did you mean '{guess}'?" if guess else f"use one of: {', '.join(kinds)}"
            yield _error(
                ("tables", name, "subject"),
                f"'{table.subject}' is not a subject kind of the policy; {hint}",
            )


def _retention(tables: dict[str, Table], policy: Policy | None) -> Iterator[Problem]:
    """Each table's retention rules: known to the policy, clocks on this or a linked table.

    The clock column's existence and type are checked against the live database when a
    sweep is planned (`lawful.retention`), as the other column checks are.
    """
    known = _rule_names(policy) if policy is not None else None
    for name, table in tables.items():
        seen: set[str] = set()
        for i, use in enumerate(table.retention):
            path: Path = ("tables", name, "retention", i)
            if use.rule in seen:
                yield _error(
                    (*path, "rule"),
                    f"rule '{use.rule}' is already given for this table; give each rule once",
                )
            seen.add(use.rule)
            if known is not None and use.rule not in known:
                guess = did_you_mean(use.rule, known)
                hint = (
                    f"did you mean '{guess}'?"
                    if guess
                    else f"use one of: {', '.join(known)}"
                    if known
                    else "declare one under retention"
                )
                yield _error(
                    (*path, "rule"), f"'{use.rule}' is not a retention rule of the policy; {hint}"
                )
            rule = find_rule(policy, use.rule) if policy is not None else None
            if rule is not None:
                yield from _rule_fits(path, table, rule)
            yield from _clock_path(tables, name, path, use.path)
        if policy is not None and not table.retention:
            personal = [c for c, spec in table.columns.items() if is_personal(spec.category)]
            if personal:
                yield _warning(
                    ("tables", name),
                    "this table holds personal data but no retention rule applies to it, so "
                    "no sweep ever removes it; add retention: [{rule: <name>, from: <column>}]",
                )
