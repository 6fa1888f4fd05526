"""`Notices`: the notice, the records of processing, the consistency check and publishing,
for one policy (and, where they need them, its datasets and lawful's store)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from lawful.datasets.load import LoadedDataset
from lawful.datasets.model import Dataset
from lawful.notice.blocks import NoticeDocument
from lawful.notice.document import build_notice
from lawful.notice.lint import DEFAULT_LAST_REQUESTS, LintReport, audit_policy
from lawful.notice.publish import Publication, publish_policy
from lawful.notice.render import render
from lawful.notice.ropa import Record, build_ropa, render_ropa
from lawful.policy import LoadedPolicy, Policy
from lawful.store import Store


class Notices:
    """The policy as a document. `store` is needed by `audit` (its store checks) and
    `publish`; `datasets` (annotations, loaded without the policy) by `ropa` and `audit`."""

    def __init__(
        self,
        policy: Policy,
        *,
        store: Store | None = None,
        datasets: Sequence[LoadedDataset | Dataset] = (),
    ) -> None:
        self.policy = policy
        self.store = store
        self.datasets = list(datasets)

    def document(self, *, jurisdiction: str | None = None, lang: str = "en") -> NoticeDocument:
        """The notice's sections, translated (raises NoticeError, UnknownLanguage)."""
        return build_notice(self.policy, jurisdiction=jurisdiction, lang=lang)

    def render(self, doc: NoticeDocument, fmt: str = "html") -> str:
        return render("notice", fmt, doc=doc)

    def notice(
        self, fmt: str = "html", *, jurisdiction: str | None = None, lang: str = "en"
    ) -> str:
        """The privacy notice as Markdown (`md`) or HTML (`html`)."""
        return self.render(self.document(jurisdiction=jurisdiction, lang=lang), fmt)

    def records(self) -> list[Record]:
        """The records of processing (GDPR Art. 30), one per purpose."""
        return build_ropa(self.policy, [_dataset(d) for d in self.datasets])

    def ropa(self, fmt: str = "json") -> str:
        return render_ropa(self.policy, self.records(), fmt)

    def audit(
        self,
        *,
        live: bool = True,
        last_requests: int = DEFAULT_LAST_REQUESTS,
        now: datetime | None = None,
    ) -> LintReport:
        """The consistency check between the policy, the datasets and the store."""
        return audit_policy(
            self.policy,
            self.datasets,
            store=self.store,
            live=live,
            last_requests=last_requests,
            now=now,
        )

    def publish(self, loaded: LoadedPolicy) -> Publication:
        """Record `loaded` (this policy's file) as a new version; see `publish_policy`."""
        if self.store is None:
            raise ValueError("publishing needs the store: Notices(policy, store=store)")
        return publish_policy(self.store, loaded)


def _dataset(item: LoadedDataset | Dataset) -> Dataset:
    return item.dataset if isinstance(item, LoadedDataset) else item
