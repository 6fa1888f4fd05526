"""The policy language's words as a reader of a notice understands them (English msgids).

Each closed word list of `lawful.policy.vocabulary` gets a plain-words label; the
catalogs translate the labels (the English text is the key). `all_labels()` is how the
catalog test finds them. A word without a label shows as itself with '_' as spaces, so
a word added to the language later still renders.
"""

from __future__ import annotations

from lawful.policy.durations import Duration

BASIS = {
    "consent": "your consent",
    "contract": "performing a contract with you, or steps you asked for before one",
    "legal_obligation": "a legal obligation we must comply with",
    "vital_interests": "protecting your vital interests or someone else's",
    "public_interest": "a task in the public interest",
    "legitimate_interests": "our legitimate interests",
}

RECIPIENT_ROLE = {
    "processor": "service provider processing on our behalf",
    "affiliate": "company of our group",
    "partner": "business partner",
    "authority": "public authority",
    "acquirer": "buyer or successor of our business",
    "advisor": "professional adviser",
    "controller": "independent controller",
    "user": "other users of the service",
}

SAFEGUARD = {
    "adequacy": "an adequacy decision for the destination country",
    "scc": "standard contractual clauses",
    "bcr": "binding corporate rules",
    "dpf": "certification under the EU-U.S. Data Privacy Framework",
    "contract": "a contract binding the recipient to protect the data",
    "consent": "your consent",
    "separate_consent": "your separate consent",
    "security_assessment": "a security assessment by the Cyberspace Administration of China",
    "certification": "a personal information protection certification",
    "standard_contract": "the standard contract of the Cyberspace Administration of China",
    "derogation": "a derogation for a specific situation (GDPR Art. 49)",
    "deidentification": "de-identification before the data leaves",
}

SECURITY = {
    "encryption": "encryption of stored data",
    "encryption_in_transit": "encryption in transit (TLS/HTTPS)",
    "access_control": "access limited to the staff who need it",
    "authentication": "authentication of users and staff",
    "security_audits": "security audits",
    "training": "staff training and guidelines",
    "physical_security": "physically secured facilities",
    "pseudonymisation": "pseudonymisation",
    "minimisation": "collecting and sharing no more than needed",
    "backups": "backups",
    "incident_response": "an incident response plan",
    "certification": "security certification",
    "disclosure_log": "a log of the data shared with others",
}

REQUEST_KIND = {
    "confirm": "confirm whether we process your personal data",
    "access": "access your personal data and get a copy",
    "portability": "receive your data in a portable format, or have it sent to another company",
    "rectification": "correct inaccurate or incomplete data",
    "erasure": "have your data erased",
    "account_closure": "close your account",
    "restriction": "restrict how we use your data",
    "objection": "object to our use of your data",
    "withdraw_consent": "withdraw your consent at any time",
    "opt_out_sale": "opt out of the sale or sharing of your personal information",
    "restrict_recipients": "stop us sharing your data with recipients you name",
    "explain_decision": "an explanation of an automated decision, and a human review",
    "information": "be informed of how we use your data",
}

REQUEST_SHORT = {
    "confirm": "confirmation",
    "access": "access",
    "portability": "portability",
    "rectification": "correction",
    "erasure": "erasure",
    "account_closure": "account closure",
    "restriction": "restriction",
    "objection": "objection",
    "withdraw_consent": "withdrawing consent",
    "opt_out_sale": "opting out of sale or sharing",
    "restrict_recipients": "restricting recipients",
    "explain_decision": "explaining a decision",
    "information": "information",
}

VERIFICATION = {
    "email_code": "a code sent to your email address",
    "phone_code": "a code sent to your phone",
    "signed_in": "signing in to your account",
    "written_request": "a written request",
    "id_document": "an identity document",
}

REQUEST_EXCEPTION = {
    "legal_obligation": "a legal obligation requires us to keep or use the data",
    "national_security": "national security or defence",
    "public_interest": "public safety, public health or another important public interest",
    "crime_investigation": "the investigation or prosecution of crime",
    "legal_claims": "establishing, exercising or defending legal claims",
    "abuse_of_rights": "the request is an abuse of rights",
    "vital_interests": "protecting someone's life or property",
    "others_rights": "the rights and freedoms of other people",
    "trade_secret": "trade secrets",
    "confidentiality": "a duty of confidentiality",
    "manifestly_unfounded": "the request is manifestly unfounded",
    "excessive": "the request is excessive or repeated",
    "impractical": "the request is impractical to fulfil",
    "not_required_by_law": "the law does not require it",
}

FEE = {
    "free": "free of charge",
    "reasonable_fee": "a reasonable fee",
    "cost_fee": "a fee covering our costs",
    "refuse": "we may refuse the request",
}

CHANNEL = {
    "email": "email",
    "sms": "text message",
    "phone": "telephone",
    "post": "post",
    "push": "push notification",
    "in-app": "messages in the app",
    "social": "social media",
    "fax": "fax",
}

CHANGE_NOTICE = {
    "email": "by email",
    "website": "on our website",
    "in-app": "in the app",
    "push": "by push notification",
    "letter": "by letter",
}

BREACH_CHANNEL = {
    "email": "email",
    "letter": "letter",
    "phone": "telephone",
    "sms": "text message",
    "push": "push notification",
    "announcement": "a public announcement",
}

SOURCE = {
    "subject": "you",
    "automatic": "collected automatically when you use our services",
    "third_party": "third parties",
    "employer": "your employer or colleagues",
    "customer": "our business customers, who use our services about you",
    "public": "public sources",
}

THEN = {"delete": "then deleted", "anonymize": "then anonymised"}

HOLD = {
    "legal_hold": "a legal hold",
    "dispute": "a dispute",
    "legal_claim": "a legal claim",
    "legal_obligation": "a legal obligation to keep it longer",
    "investigation": "an investigation",
}

BELOW_MIN_AGE = {
    "refuse": "we do not accept them",
    "parental_consent": "we need the consent of a parent or guardian",
    "delete_on_discovery": "if we learn that we hold a child's data without it being allowed, we delete it",
}

ANCHOR = {
    "collected": "from collection",
    "last_activity": "from your last activity",
    "contract_end": "from the end of the contract",
    "account_closed": "from the closing of the account",
}

JURISDICTION = {
    "eu": "the European Economic Area (GDPR)",
    "uk": "the United Kingdom (UK GDPR)",
    "us-ca": "California (CCPA)",
    "cn": "mainland China (PIPL)",
    "br": "Brazil (LGPD)",
    "other": "everywhere else",
}

SIGNAL = {
    "gpc": "Global Privacy Control",
    "dnt": "Do Not Track",
}

# Duration units: (singular msgid, plural msgid) per Duration field.
DURATION_UNITS = {
    "years": ("{n} year", "{n} years"),
    "months": ("{n} month", "{n} months"),
    "weeks": ("{n} week", "{n} weeks"),
    "days": ("{n} day", "{n} days"),
    "hours": ("{n} hour", "{n} hours"),
    "business_days": ("{n} business day", "{n} business days"),
}

TABLES = (
    BASIS,
    RECIPIENT_ROLE,
    SAFEGUARD,
    SECURITY,
    REQUEST_KIND,
    REQUEST_SHORT,
    VERIFICATION,
    REQUEST_EXCEPTION,
    FEE,
    CHANNEL,
    CHANGE_NOTICE,
    BREACH_CHANNEL,
    SOURCE,
    THEN,
    HOLD,
    BELOW_MIN_AGE,
    ANCHOR,
    JURISDICTION,
    SIGNAL,
)


def label(table: dict[str, str], word: object) -> str:
    """The English label of a vocabulary word (the word itself when it has none)."""
    key = str(getattr(word, "value", word))
    return table.get(key, key.replace("_", " "))


def all_labels() -> set[str]:
    found = {text for table in TABLES for text in table.values()}
    found |= {text for pair in DURATION_UNITS.values() for text in pair}
    from lawful.notice.ccpa import CCPA_NAMES, SENSITIVE

    found |= {*CCPA_NAMES.values(), SENSITIVE}
    return found


def duration_words(duration: Duration, _: object) -> str:
    """A duration in words, each unit translated: '1 month', '15 个工作日'."""
    parts = []
    for unit, (one, many) in DURATION_UNITS.items():
        n = getattr(duration, unit)
        if n:
            parts.append(_.plural(n, one, many))  # type: ignore[attr-defined]
    return " ".join(parts) or _.plural(0, "{n} day", "{n} days")  # type: ignore[attr-defined]
