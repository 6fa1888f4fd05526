"""Build the privacy notice from a policy: what each section says, in the reader's language.

The sections follow the seeds (and GDPR Arts. 13-14, PIPL Art. 17, CCPA §1798.130(a)(5)):
who we are; what we collect and how; purposes and lawful bases; recipients; transfers
and safeguards; retention; cookies; security; your rights, how to exercise them and the
deadlines; children; changes; contact and the supervisory authority; and, for
California, the CCPA table of categories. A section the policy has nothing for
(children, cookies) is left out rather than filled with a promise the policy doesn't make.
"""

from __future__ import annotations

from collections.abc import Sequence

from lawful.notice import labels as L
from lawful.notice.blocks import Grid, Items, NoticeDocument, Para, Section, Sub
from lawful.notice.catalog import HTML_LANG, Translator
from lawful.notice.ccpa import ccpa_rows
from lawful.notice.facts import (
    category_label,
    deadline_terms,
    is_abroad,
    recipient_purposes,
    sources_of,
    title,
)
from lawful.policy.countries import ANYWHERE
from lawful.policy.jurisdictions import get_jurisdiction
from lawful.policy.model import Policy, RetentionRule
from lawful.policy.vocabulary import Basis, Role

# Section ids, in order; the same in every language (anchors, tests).
SECTION_IDS = (
    "who-we-are",
    "what-we-collect",
    "purposes",
    "recipients",
    "transfers",
    "retention",
    "cookies",
    "security",
    "rights",
    "children",
    "changes",
    "contact",
    "california",
)


class NoticeError(ValueError):
    """A notice that cannot be rendered as asked; the message says what to change."""


def build_notice(
    policy: Policy, *, jurisdiction: str | None = None, lang: str = "en"
) -> NoticeDocument:
    """The notice for `policy`, for readers under `jurisdiction` (default: every one served)."""
    _ = Translator(lang)
    shown = _jurisdictions(policy, jurisdiction)
    b = _Builder(policy, shown, _)
    sections = [
        b.who_we_are(),
        b.what_we_collect(),
        b.purposes(),
        b.recipients(),
        b.transfers(),
        b.retention(),
        b.cookies(),
        b.security(),
        b.rights(),
        b.children(),
        b.changes(),
        b.contact(),
        b.california(),
    ]
    controller = policy.controller
    name = controller.trade_name or controller.name
    intro = [
        _(
            "This notice explains how {name} collects, uses, shares and protects your personal data, and the rights you have over it.",
            name=name,
        )
    ]
    if policy.effective or policy.version:
        intro.append(
            _(
                "Version {version}, effective {date}.",
                version=policy.version or "-",
                date=str(policy.effective or "-"),
            )
        )
    if jurisdiction is not None:
        intro.append(
            _(
                "This version of the notice is for people in {where}.",
                where=_(L.label(L.JURISDICTION, shown[0])),
            )
        )
    doc_labels = {
        "contents": _("Contents"),
        "back_to_top": _("Back to top"),
        "skip": _("Skip to the notice"),
    }
    return NoticeDocument(
        title=_("Privacy notice of {name}", name=name),
        lang=_.lang,
        html_lang=HTML_LANG[_.lang],
        intro=tuple(intro),
        sections=tuple(s for s in sections if s is not None),
        labels=doc_labels,
        missing=tuple(sorted(_.missing)),
    )


def _jurisdictions(policy: Policy, jurisdiction: str | None) -> list[str]:
    served = [str(j) for j in policy.jurisdictions]
    if jurisdiction is None:
        return served
    try:
        key = get_jurisdiction(jurisdiction).key
    except ValueError as exc:
        raise NoticeError(str(exc)) from None
    if key not in served:
        raise NoticeError(
            f"the policy does not serve jurisdiction '{key}'; use one of: {', '.join(served)} "
            "(or leave --jurisdiction out for all of them)"
        )
    return [key]


def _join(items: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(i for i in items if i))


class _Builder:
    def __init__(self, policy: Policy, jurisdictions: list[str], _: Translator) -> None:
        self.p = policy
        self.js = jurisdictions
        self._ = _

    # --- helpers ------------------------------------------------------------------------

    def word(self, table: dict[str, str], value: object) -> str:
        return self._(L.label(table, value))

    def words(self, table: dict[str, str], values: Sequence[object]) -> str:
        return _join([self.word(table, v) for v in values])

    def duration(self, d: object) -> str:
        return L.duration_words(d, self._)  # type: ignore[arg-type]

    def cats(self, keys: Sequence[str]) -> str:
        return _join([category_label(self.p, k) for k in keys])

    def where(self, jur: str) -> str:
        return self.word(L.JURISDICTION, jur)

    def country(self, code: object) -> str:
        return self._("any country") if str(code) == ANYWHERE else str(code)

    def section(self, id: str, heading: str, blocks: list) -> Section:
        return Section(id, heading, tuple(blocks))

    # --- sections -----------------------------------------------------------------------

    def who_we_are(self) -> Section:
        _ = self._
        c = self.p.controller
        blocks: list = []
        name = c.name if not c.trade_name else f"{c.name} ({c.trade_name})"
        blocks.append(
            Para(
                _(
                    "{name} is the controller of your personal data: it decides why and how it is used.",
                    name=name,
                )
            )
        )
        facts = []
        if c.registration:
            facts.append(_("Registration number: {value}", value=c.registration))
        if c.contacts.address:
            facts.append(_("Address: {value}", value=c.contacts.address))
        facts.append(_("Country of establishment: {value}", value=c.country))
        if c.contacts.website:
            facts.append(_("Website: {value}", value=c.contacts.website))
        if c.representative:
            facts.append(_("Our representative: {value}", value=c.representative))
        blocks.append(Items(tuple(facts)))
        if Role.processor in c.roles:
            processor = [k for k, s in self.p.subjects.items() if s.role is Role.processor]
            kinds = _join([self.p.subjects[k].description or title(k) for k in processor])
            text = _(
                "When our business customers use our services to process data about their own people, we act as their processor: we follow their instructions, and their privacy notice tells you how they use your data."
            )
            if kinds:
                text += " " + _("This concerns: {value}.", value=kinds)
            blocks.append(Para(text))
        return self.section("who-we-are", _("Who we are"), blocks)

    def what_we_collect(self) -> Section:
        _ = self._
        p = self.p
        by_source: dict[str, dict[str, None]] = {}
        for purpose in p.purposes.values():
            for category in purpose.categories:
                for source in sources_of(purpose, category):
                    by_source.setdefault(source, {})[category] = None
        blocks: list = []
        people = [s.description or title(k) for k, s in p.subjects.items()]
        blocks.append(Sub(_("Whose data")))
        blocks.append(Items(tuple(people)))
        if "subject" in by_source:
            blocks.append(Sub(_("Data you give us")))
            blocks.append(Items(tuple(category_label(p, k) for k in by_source["subject"])))
        if "automatic" in by_source:
            blocks.append(Sub(_("Data we collect automatically")))
            blocks.append(Items(tuple(category_label(p, k) for k in by_source["automatic"])))
        others = [s for s in by_source if s not in ("subject", "automatic")]
        if others:
            blocks.append(Sub(_("Data we receive from others")))
            blocks.append(
                Items(
                    tuple(
                        _(
                            "From {source}: {what}",
                            source=self.word(L.SOURCE, s),
                            what=self.cats(list(by_source[s])),
                        )
                        for s in others
                    )
                )
            )
        required = [(n, s) for n, s in p.purposes.items() if s.required]
        for name, purpose in required:
            blocks.append(
                Para(
                    _(
                        "The data we need for {purpose} is required: without it we cannot provide the service.",
                        purpose=title(name, purpose.name),
                    )
                )
            )
        return self.section("what-we-collect", _("What we collect and how"), blocks)

    def _basis_text(self, name: str) -> str:
        _ = self._
        purpose = self.p.purposes[name]
        if purpose.role is Role.processor:
            return _("we process this data as a processor, on our customer's instructions")
        per: dict[str, list[str]] = {}
        for jur in self.js:
            per.setdefault(purpose.basis_in(jur).value, []).append(jur)
        if len(per) == 1:
            text = self.word(L.BASIS, next(iter(per)))
        else:
            text = "; ".join(
                _(
                    "{basis} ({where})",
                    basis=self.word(L.BASIS, basis),
                    where=_join([self.where(j) for j in jurs]),
                )
                for basis, jurs in per.items()
            )
        if purpose.legitimate_interest and Basis.legitimate_interests.value in per:
            text += " — " + _("our interest: {value}", value=purpose.legitimate_interest)
        return text

    def purposes(self) -> Section:
        _ = self._
        p = self.p
        rows = []
        for name, purpose in p.purposes.items():
            what = title(name, purpose.name)
            if purpose.description:
                what += ": " + purpose.description
            rows.append((what, self.cats(purpose.categories), self._basis_text(name)))
        blocks: list = [
            Grid(
                _("Why we use your data, and on what lawful basis"),
                (_("Purpose"), _("Data used"), _("Lawful basis")),
                tuple(rows),
            )
        ]
        consent = [
            n for n, s in p.purposes.items() if any(s.basis_in(j) is Basis.consent for j in self.js)
        ]
        if consent:
            blocks.append(
                Para(
                    _(
                        "Where we rely on your consent, you may withdraw it at any time, as easily as you gave it; this does not affect what we did before."
                    )
                )
            )
        marketing = {n: s for n, s in p.purposes.items() if s.use.startswith("marketing")}
        if marketing:
            blocks.append(Sub(_("Marketing")))
            channels = [c for s in marketing.values() for c in s.channels]
            if channels:
                blocks.append(
                    Para(
                        _("We may contact you by: {value}.", value=self.words(L.CHANNEL, channels))
                    )
                )
            if p.marketing.lists:
                blocks.append(
                    Items(
                        tuple(
                            title(k, m.name) + (f": {m.description}" if m.description else "")
                            for k, m in p.marketing.lists.items()
                        )
                    )
                )
            unsub = p.marketing.unsubscribe
            ways = []
            if unsub.link:
                ways.append(_("the unsubscribe link in every message"))
            if unsub.email:
                ways.append(_("an email to {value}", value=unsub.email))
            if ways:
                text = _(
                    "You can stop marketing at any time, free of charge, with {value}.",
                    value=_join(ways),
                )
                if unsub.all_lists:
                    text += " " + _("You may leave one list or all of them at once.")
                blocks.append(Para(text))
            if p.marketing.limit_ad_tracking:
                blocks.append(
                    Para(_("You can opt out of targeted advertising (limit ad tracking)."))
                )
        if p.marketing.transactional:
            blocks.append(
                Para(
                    _(
                        "Some messages are part of the service and cannot be opted out of: {value}.",
                        value=_join(
                            [
                                title(t, p.purposes[t].name if t in p.purposes else None)
                                for t in p.marketing.transactional
                            ]
                        ),
                    )
                )
            )
        automated = [(n, s.automated) for n, s in p.purposes.items() if s.automated is not None]
        if automated:
            blocks.append(Sub(_("Automated decisions")))
            for name, spec in automated:
                text = _(
                    "{purpose} involves a decision made by automated means.",
                    purpose=title(name, p.purposes[name].name),
                )
                if spec.logic:
                    text += " " + _("How it works: {value}", value=spec.logic)
                if spec.human_review:
                    text += " " + _("You may ask for a person to review it and contest it.")
                blocks.append(Para(text))
        return self.section("purposes", _("Why we use your data and our lawful bases"), blocks)

    def recipients(self) -> Section:
        _ = self._
        p = self.p
        rows = []
        for name, spec in p.recipients.items():
            who = title(name, spec.name)
            if spec.description:
                who += ": " + spec.description
            purposes = _join([title(n, p.purposes[n].name) for n in recipient_purposes(p, name)])
            rows.append(
                (
                    who,
                    self.word(L.RECIPIENT_ROLE, spec.role),
                    _join([self.country(c) for c in spec.country]),
                    purposes,
                )
            )
        blocks: list = []
        if rows:
            blocks.append(
                Grid(
                    _("Who receives your data"),
                    (_("Recipient"), _("Role"), _("Where"), _("For")),
                    tuple(rows),
                )
            )
        else:
            blocks.append(Para(_("We do not disclose your personal data to anyone else.")))
        if "sale" in p.model_fields_set or "us-ca" in self.js:
            if not p.sale.sells:
                blocks.append(Para(_("We do not sell your personal data.")))
            if not p.sale.shares:
                blocks.append(
                    Para(
                        _(
                            "We do not share your personal data for cross-context behavioural advertising."
                        )
                    )
                )
        essential = [title(n, s.name) for n, s in p.recipients.items() if s.essential]
        if essential:
            blocks.append(
                Para(
                    _(
                        "The service cannot work without these recipients: {value}.",
                        value=_join(essential),
                    )
                )
            )
        return self.section("recipients", _("Who we share your data with"), blocks)

    def transfers(self) -> Section:
        _ = self._
        p = self.p
        blocks: list = []
        if p.transfers.storage:
            blocks.append(
                Para(
                    _(
                        "We store your data in: {value}.",
                        value=_join([str(c) for c in p.transfers.storage]),
                    )
                )
            )
        rows = []
        for name, spec in p.recipients.items():
            if not is_abroad(p, name):
                continue
            if spec.safeguards:
                how = self.words(L.SAFEGUARD, spec.safeguards)
            elif spec.role.value == "authority":
                how = _("only where the law requires it")
            elif spec.role.value == "user":
                how = _("what you publish is visible to other users wherever they are")
            else:
                how = "-"
            rows.append(
                (title(name, spec.name), _join([self.country(c) for c in spec.country]), how)
            )
        if rows:
            blocks.append(
                Para(
                    _(
                        "Some recipients are in other countries, whose laws may protect personal data less than yours. We then protect your data with the safeguards below."
                    )
                )
            )
            blocks.append(
                Grid(
                    _("Transfers to other countries"),
                    (_("Recipient"), _("Countries"), _("Safeguards")),
                    tuple(rows),
                )
            )
        else:
            blocks.append(
                Para(
                    _(
                        "We do not transfer your personal data outside {value}.",
                        value=p.controller.country,
                    )
                )
            )
        for jur in self.js:
            law = get_jurisdiction(jur)
            rule = p.transfers.rules.get(jur)
            required = list(
                dict.fromkeys(
                    [*law.transfer_requires, *(s.value for s in (rule.require if rule else []))]
                )
            )
            if required:
                blocks.append(
                    Para(
                        _(
                            "Every transfer out of {where} needs: {value}.",
                            where=self.where(jur),
                            value=self.words(L.SAFEGUARD, required),
                        )
                    )
                )
            if rule and rule.accept:
                blocks.append(
                    Para(
                        _(
                            "For data from {where}, we rely on one of: {value}.",
                            where=self.where(jur),
                            value=self.words(L.SAFEGUARD, rule.accept),
                        )
                    )
                )
            if rule and rule.deidentify:
                blocks.append(
                    Para(
                        _(
                            "Data from {where} is de-identified before it leaves.",
                            where=self.where(jur),
                        )
                    )
                )
        blocks.append(Para(_("You may ask us for a copy of the safeguards.")))
        return self.section("transfers", _("Transfers to other countries"), blocks)

    def _period(self, rule: RetentionRule) -> str:
        _ = self._
        if rule.keep is None:
            return rule.criteria or "-"
        anchor = rule.from_
        if anchor in L.ANCHOR:
            since = self.word(L.ANCHOR, anchor)
        else:
            since = _("from: {value}", value=self.p.events.get(anchor, anchor.replace("_", " ")))
        text = f"{self.duration(rule.keep)} {since}"
        if rule.criteria:
            text += f" ({rule.criteria})"
        return text

    def retention(self) -> Section:
        _ = self._
        p = self.p
        rows = []
        for name, rule in p.retention_rules().items():
            what = rule.description or title(name.removeprefix("purpose:"))
            scope = [title(n, p.purposes[n].name) for n in rule.purposes if n in p.purposes]
            if name.startswith("purpose:"):
                scope = [
                    title(
                        name.removeprefix("purpose:"),
                        p.purposes[name.removeprefix("purpose:")].name,
                    )
                ]
            scope += [category_label(p, c) for c in rule.categories]
            if scope:
                what += " (" + _("for: {value}", value=_join(scope)) + ")"
            longer = self.words(L.HOLD, rule.exceptions) if rule.exceptions else "-"
            period = self._period(rule)
            if rule.law:
                period += " — " + _("required by {value}", value=rule.law)
            rows.append((what, period, self.word(L.THEN, rule.then), longer))
        blocks: list = [
            Para(
                _(
                    "We keep personal data only as long as we need it for the purposes above, then delete or anonymise it."
                )
            ),
        ]
        if rows:
            blocks.append(
                Grid(
                    _("How long we keep your data"),
                    (_("Data"), _("How long"), _("Afterwards"), _("Kept longer during")),
                    tuple(rows),
                )
            )
        return self.section("retention", _("How long we keep your data"), blocks)

    def cookies(self) -> Section | None:
        _ = self._
        p = self.p
        if not p.cookies:
            return None
        rows = []
        for name, spec in p.cookies.items():
            purposes = _join(
                [title(n, p.purposes[n].name) for n in spec.purposes if n in p.purposes]
            )
            what = spec.description or purposes or "-"
            rows.append(
                (
                    title(name, spec.name),
                    what,
                    _("optional: only with your consent")
                    if spec.optional
                    else _("required: the site cannot work without them"),
                    _("us and third parties") if spec.third_party else _("us"),
                    self.duration(spec.lifetime) if spec.lifetime else "-",
                )
            )
        blocks: list = [
            Para(
                _(
                    "We use cookies and similar technologies. You can change your choices at any time in the cookie settings, and block cookies in your browser; some features may then stop working."
                )
            ),
            Grid(
                _("Cookie categories"),
                (_("Category"), _("What they do"), _("Your choice"), _("Set by"), _("Lifetime")),
                tuple(rows),
            ),
        ]
        if p.signals.gpc.value == "honor":
            blocks.append(
                Para(
                    _(
                        "We treat a Global Privacy Control signal from your browser as a request to opt out."
                    )
                )
            )
        if p.signals.dnt.value == "honor":
            blocks.append(Para(_("We respect the Do Not Track signal of your browser.")))
        return self.section("cookies", _("Cookies"), blocks)

    def security(self) -> Section:
        _ = self._
        p = self.p
        blocks: list = []
        if p.security.measures:
            blocks.append(
                Para(
                    _("We protect your data with technical and organisational measures, including:")
                )
            )
            blocks.append(Items(tuple(self.word(L.SECURITY, m) for m in p.security.measures)))
        else:
            blocks.append(
                Para(
                    _(
                        "We protect your data with appropriate technical and organisational measures."
                    )
                )
            )
        if p.security.certifications:
            blocks.append(
                Para(_("Certifications: {value}.", value=_join(list(p.security.certifications))))
            )
        breaches = p.breaches
        if breaches.notify_subjects:
            text = _(
                "If a breach of your data is likely to put you at high risk, we tell you without undue delay"
            )
            if breaches.notify_subjects_within:
                text += " " + _(
                    "and within {value}", value=self.duration(breaches.notify_subjects_within)
                )
            if breaches.channels:
                text += " " + _("by {value}", value=self.words(L.BREACH_CHANNEL, breaches.channels))
            blocks.append(Para(text + "."))
        return self.section("security", _("How we protect your data"), blocks)

    def rights(self) -> Section:
        _ = self._
        p = self.p
        r = p.requests
        blocks: list = [
            Para(_("You have the right to:")),
            Items(tuple(self.word(L.REQUEST_KIND, k) for k in r.kinds)),
            Sub(_("How to exercise your rights")),
        ]
        ways = []
        contact = r.contact or p.controller.contacts.privacy_email or p.controller.contacts.email
        if contact:
            ways.append(_("by email to {value}", value=contact))
        if p.controller.contacts.request_form:
            ways.append(
                _("with our request form at {value}", value=p.controller.contacts.request_form)
            )
        if p.controller.contacts.account_page:
            ways.append(_("in your account at {value}", value=p.controller.contacts.account_page))
        if p.controller.contacts.address and "written_request" in [v.value for v in r.verification]:
            ways.append(_("in writing to {value}", value=p.controller.contacts.address))
        if ways:
            blocks.append(Para(_("Send us your request {value}.", value=_join(ways))))
        blocks.append(
            Para(
                _(
                    "We verify your identity before we act, by: {value}.",
                    value=self.words(L.VERIFICATION, r.verification),
                )
            )
        )
        fee = _("Requests are {value}.", value=self.word(L.FEE, r.fee.default))
        if r.fee.when_excessive != r.fee.default:
            fee += " " + _(
                "For manifestly unfounded, excessive or repeated requests: {value}.",
                value=self.word(L.FEE, r.fee.when_excessive),
            )
        blocks.append(Para(fee))
        if r.authorised_agents:
            blocks.append(Para(_("You may ask someone you authorise to make a request for you.")))
        rows = []
        ext_rows = []
        for jur in self.js:
            groups: dict[str, list[str]] = {}
            extension = None
            for kind in r.kinds:
                terms = deadline_terms(p, kind.value, jur)
                when = self.duration(terms.within) if terms.within else _("without undue delay")
                groups.setdefault(when, []).append(self.word(L.REQUEST_SHORT, kind))
                extension = extension or terms.extension
            for i, (when, kinds) in enumerate(groups.items()):
                if len(groups) == 1:
                    which = _("every request")
                elif i == 0 and len(kinds) > len(r.kinds) // 2:
                    which = _("every request not listed below")
                else:
                    which = _join(kinds)
                rows.append((self.where(jur), which, when))
            if extension:
                ext_rows.append(self.where(jur) + ": " + self.duration(extension))
        blocks.append(
            Grid(
                _("When we answer"),
                (_("Where you live"), _("Request"), _("We answer within")),
                tuple(rows),
            )
        )
        if ext_rows:
            blocks.append(
                Para(
                    _(
                        "For complex or numerous requests we may extend the deadline, and tell you why before it ends: {value}.",
                        value="; ".join(ext_rows),
                    )
                )
            )
        if r.exceptions:
            blocks.append(Para(_("We may refuse or limit a request, and tell you why, where:")))
            blocks.append(Items(tuple(self.word(L.REQUEST_EXCEPTION, e) for e in r.exceptions)))
        blocks.append(Para(_("We will not treat you differently for exercising your rights.")))
        return self.section("rights", _("Your rights and how to exercise them"), blocks)

    def children(self) -> Section | None:
        _ = self._
        p = self.p
        items = []
        for name, kind in p.subjects.items():
            if kind.min_age is None and not kind.min_age_by_jurisdiction:
                continue
            who = kind.description or title(name)
            if kind.min_age is not None:
                text = _("{who}: you must be at least {age} years old.", who=who, age=kind.min_age)
            else:
                text = who + ":"
            for jur, age in kind.min_age_by_jurisdiction.items():
                if jur in self.js:
                    text += " " + _(
                        "In {where}: at least {age} years old.", where=self.where(jur), age=age
                    )
            rules = [self.word(L.BELOW_MIN_AGE, b) for b in kind.below_min_age]
            if rules:
                text += " " + _("Below that age: {value}.", value="; ".join(rules))
            items.append(text)
        if not items:
            return None
        return self.section("children", _("Children"), [Items(tuple(items))])

    def changes(self) -> Section:
        _ = self._
        c = self.p.changes
        blocks: list = []
        if c.notify:
            blocks.append(
                Para(
                    _(
                        "When we change this notice, we tell you {value}.",
                        value=self.words(L.CHANGE_NOTICE, c.notify),
                    )
                )
            )
        else:
            blocks.append(Para(_("When we change this notice, we publish the new version here.")))
        if c.advance_notice:
            blocks.append(
                Para(
                    _(
                        "We announce material changes at least {value} before they take effect.",
                        value=self.duration(c.advance_notice),
                    )
                )
            )
        if c.material_requires_consent:
            blocks.append(
                Para(
                    _(
                        "We will not reduce your rights under this notice, nor make other material changes, without your consent."
                    )
                )
            )
        else:
            blocks.append(
                Para(
                    _(
                        "Where a change affects something you consented to, we ask for your consent again."
                    )
                )
            )
        if self.p.effective:
            blocks.append(Para(_("Last updated: {value}.", value=str(self.p.effective))))
        return self.section("changes", _("Changes to this notice"), blocks)

    def contact(self) -> Section:
        _ = self._
        c = self.p.controller
        k = c.contacts
        items = []
        if k.privacy_email:
            items.append(_("Privacy questions and requests: {value}", value=k.privacy_email))
        if k.dpo_email or k.dpo_name:
            items.append(
                _(
                    "Data Protection Officer: {value}",
                    value=_join([k.dpo_name or "", k.dpo_email or ""]),
                )
            )
        if k.email and k.email != k.privacy_email:
            items.append(_("Email: {value}", value=k.email))
        if k.phone:
            items.append(_("Telephone: {value}", value=k.phone))
        if k.address:
            items.append(_("Post: {value}", value=k.address))
        if k.request_form:
            items.append(_("Request form: {value}", value=k.request_form))
        if k.unsubscribe_email and k.unsubscribe_email != k.privacy_email:
            items.append(_("Unsubscribe: {value}", value=k.unsubscribe_email))
        blocks: list = [Para(c.name), Items(tuple(items))]
        authority = c.supervisory_authority
        if authority is not None:
            text = _("You may complain to our supervisory authority, {name}", name=authority.name)
            if authority.url:
                text += f" ({authority.url})"
            blocks.append(
                Para(text + "; " + _("or to the supervisory authority where you live or work."))
            )
        else:
            blocks.append(
                Para(
                    _(
                        "You may also complain to the data protection authority where you live or work."
                    )
                )
            )
        return self.section("contact", _("Contact us and complaints"), blocks)

    def california(self) -> Section | None:
        _ = self._
        if "us-ca" not in self.js:
            return None
        yes, no, na = _("Yes"), _("No"), _("N/A")
        rows = []
        for row in ccpa_rows(self.p):
            name = f"{row.letter}. {_(row.name)}" if row.letter else _(row.name)
            if not row.collected:
                rows.append((name, no, na, na, na, na))
                continue
            rows.append(
                (
                    name,
                    yes,
                    yes if row.sold else no,
                    yes if row.shared else no,
                    yes if row.disclosed else no,
                    yes if row.service_providers else no,
                )
            )
        blocks: list = [
            Para(
                _(
                    "For California residents: the categories of personal information we collect, sell, share and disclose (CCPA §1798.110, §1798.115)."
                )
            ),
            Grid(
                _("Categories of personal information"),
                (
                    _("Category"),
                    _("Collected"),
                    _("Sold"),
                    _("Shared for cross-context behavioural advertising"),
                    _("Disclosed to third parties for a business purpose"),
                    _("Disclosed to service providers"),
                ),
                tuple(rows),
            ),
        ]
        if self.p.sale.sells or self.p.sale.shares:
            blocks.append(
                Para(
                    _(
                        "You may opt out of the sale or sharing of your personal information at any time."
                    )
                )
            )
        if self.p.signals.gpc.value == "honor":
            blocks.append(
                Para(
                    _(
                        "We treat a Global Privacy Control signal from your browser as a request to opt out."
                    )
                )
            )
        return self.section(
            "california", _("California: categories of personal information"), blocks
        )
