"""Records of processing activities (GDPR Art. 30), one per purpose of the policy.

A purpose processed as controller gives an Art. 30(1) record: (a) the controller, its
representative and DPO with their contacts; (b) the purposes; (c) the categories of data
subjects and of personal data; (d) the recipients, with those in third countries; (e)
the transfers to third countries and their safeguards; (f) the time limits for erasure;
(g) the security measures. A purpose processed as processor (`role: processor`) gives an
Art. 30(2) record: (a) the processor and the controllers it acts for; (b) the categories
of processing; (c) transfers and safeguards; (d) security measures.

With dataset annotations, each record also says where the data is kept: the
dataset.table.column holding each of its categories (or a more specific one).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lawful.datasets.model import Dataset
from lawful.notice.facts import category_label, purpose_rule, recipient_purposes, title
from lawful.policy.countries import ANYWHERE
from lawful.policy.jurisdictions import get_jurisdiction
from lawful.policy.model import Policy
from lawful.policy.vocabulary import Role

FORMATS = ("json", "csv", "html")


@dataclass(frozen=True)
class Record:
    """One processing activity; the field names are the Art. 30 items they answer."""

    activity: str  # the purpose key
    article: str  # "30(1)" (controller) or "30(2)" (processor)
    name: str
    controller: str  # 30(1)(a) / 30(2)(a): name and contact details
    representative: str
    dpo: str
    processor: str  # 30(2)(a): ourselves, as processor (empty for 30(1))
    purposes: str  # 30(1)(b) / 30(2)(b): purposes, or categories of processing
    data_use: str  # the fideslang data use
    lawful_basis: dict[str, str]  # per jurisdiction served
    legitimate_interest: str
    data_subjects: list[str]  # 30(1)(c)
    data_categories: list[str]  # 30(1)(c), taxonomy keys
    special_categories: list[str]  # GDPR Art. 9/10 among them
    sources: list[str]
    recipients: list[str]  # 30(1)(d): "name (role; countries)"
    third_country_transfers: list[str]  # 30(1)(e) / 30(2)(c): "name: countries; safeguards"
    retention: str  # 30(1)(f)
    security_measures: list[str]  # 30(1)(g) / 30(2)(d)
    storage: list[str] = field(default_factory=list)  # dataset.table.column (when given)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _contacts(policy: Policy) -> str:
    c = policy.controller
    k = c.contacts
    parts = [c.name]
    if c.registration:
        parts.append(f"registration {c.registration}")
    parts += [v for v in (k.address, k.privacy_email or k.email, k.phone) if v]
    return ", ".join(parts)


def _third_countries(policy: Policy, countries: Sequence[str]) -> list[str]:
    """Countries outside the controller's own and its home law's area (EEA for the GDPR)."""
    home = {policy.controller.country}
    for jur in policy.jurisdictions:
        law = get_jurisdiction(str(jur))
        if policy.controller.country in law.countries:
            home |= set(law.countries)
    return [c for c in countries if c == ANYWHERE or c not in home]


def _where(countries: Sequence[str]) -> str:
    return ", ".join("anywhere" if c == ANYWHERE else c for c in countries)


def _subjects(policy: Policy, purpose_name: str) -> list[str]:
    purpose = policy.purposes[purpose_name]
    keys = (
        list(purpose.subjects)
        or [k for k, s in policy.subjects.items() if s.role is purpose.role]
        or list(policy.subjects)
    )
    return [
        f"{k}: {policy.subjects[k].description}" if policy.subjects[k].description else k
        for k in keys
        if k in policy.subjects
    ]


def _storage(policy: Policy, categories: Sequence[str], datasets: Sequence[Dataset]) -> list[str]:
    taxonomy = policy.taxonomy()
    found: list[str] = []
    for dataset in datasets:
        for table_name, table in dataset.tables.items():
            for column_name, column in table.columns.items():
                if column.category is None:
                    continue
                if any(
                    taxonomy.covers(c, column.category) or taxonomy.covers(column.category, c)
                    for c in categories
                ):
                    found.append(f"{dataset.key}.{table_name}.{column_name}")
    return found


def build_ropa(policy: Policy, datasets: Sequence[Dataset] = ()) -> list[Record]:
    """The records of processing of `policy`, one per purpose, in the policy's order."""
    c = policy.controller
    dpo = ", ".join(v for v in (c.contacts.dpo_name, c.contacts.dpo_email) if v)
    measures = [m.value for m in policy.security.measures] + [
        f"certification: {x}" for x in policy.security.certifications
    ]
    records = []
    for name, purpose in policy.purposes.items():
        processor = purpose.role is Role.processor
        recipients, transfers = [], []
        for rname, spec in policy.recipients.items():
            if name not in recipient_purposes(policy, rname):
                continue
            countries = [str(x) for x in spec.country]
            recipients.append(f"{title(rname, spec.name)} ({spec.role.value}; {_where(countries)})")
            third = _third_countries(policy, countries)
            if third and spec.role.value not in ("user",):
                safeguards = ", ".join(s.value for s in spec.safeguards) or (
                    "required by law" if spec.role.value == "authority" else "none declared"
                )
                transfers.append(f"{title(rname, spec.name)}: {_where(third)}; {safeguards}")
        rule = purpose_rule(policy, name)
        if rule is None:
            retention = "no retention rule"
        else:
            rule_name, spec_rule = rule
            period = (
                str(spec_rule.keep) + f" from {spec_rule.from_}"
                if spec_rule.keep
                else (spec_rule.criteria or "")
            )
            retention = f"{rule_name}: {period}, then {spec_rule.then.value}"
            if spec_rule.law:
                retention += f" ({spec_rule.law})"
        specials = sorted(
            {
                f"{k}: {policy.legal_categories(k).gdpr_special}"
                for k in purpose.categories
                if k in policy.taxonomy().categories and policy.legal_categories(k).gdpr_special
            }
        )
        description = title(name, purpose.name) + (
            f": {purpose.description}" if purpose.description else ""
        )
        records.append(
            Record(
                activity=name,
                article="30(2)" if processor else "30(1)",
                name=title(name, purpose.name),
                controller=(
                    "our customers (each business customer, under its agreement with us)"
                    if processor
                    else _contacts(policy)
                ),
                representative=c.representative or "",
                dpo=dpo,
                processor=_contacts(policy) if processor else "",
                purposes=description,
                data_use=purpose.use,
                lawful_basis={str(j): purpose.basis_in(str(j)).value for j in policy.jurisdictions},
                legitimate_interest=purpose.legitimate_interest or "",
                data_subjects=_subjects(policy, name),
                data_categories=list(purpose.categories),
                special_categories=specials,
                sources=[s.value for s in purpose.sources],
                recipients=recipients,
                third_country_transfers=transfers,
                retention=retention,
                security_measures=measures,
                storage=_storage(policy, purpose.categories, datasets),
            )
        )
    return records


CSV_FIELDS = [f for f in Record.__dataclass_fields__]


def ropa_json(records: Sequence[Record]) -> str:
    return json.dumps([r.to_dict() for r in records], indent=2, ensure_ascii=False)


def ropa_csv(records: Sequence[Record]) -> str:
    """One row per record; lists joined with '; ', bases as 'jurisdiction: basis'."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = {}
        for key, value in record.to_dict().items():
            if isinstance(value, dict):
                value = "; ".join(f"{k}: {v}" for k, v in value.items())
            elif isinstance(value, list):
                value = "; ".join(value)
            row[key] = value
        writer.writerow(row)
    return out.getvalue()


def ropa_html(policy: Policy, records: Sequence[Record]) -> str:
    from lawful.notice.render import environment

    rows = [
        [(key.replace("_", " "), _flat(value)) for key, value in r.to_dict().items()]
        for r in records
    ]
    return (
        environment()
        .get_template("ropa.html.j2")
        .render(
            controller=policy.controller.name,
            records=list(zip(records, rows, strict=True)),
            labels=lambda key: category_label(policy, key),
        )
    )


def _flat(value: object) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(value)
    return str(value)


def render_ropa(policy: Policy, records: Sequence[Record], fmt: str) -> str:
    if fmt == "json":
        return ropa_json(records)
    if fmt == "csv":
        return ropa_csv(records)
    if fmt == "html":
        return ropa_html(policy, records)
    raise ValueError(f"unknown format '{fmt}'; use one of: {', '.join(FORMATS)}")
