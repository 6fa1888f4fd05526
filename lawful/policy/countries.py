"""ISO 3166-1 alpha-2 country codes, checked where a policy names a country."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator

from lawful.policy.vocabulary import describe, did_you_mean, fail

# ISO 3166-1 alpha-2, officially assigned codes, plus XK (Kosovo, user-assigned but in
# common use by the European Commission).
COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN
    BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL
    GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM
    JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME
    MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP
    NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD
    SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
    TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW
    """.split()  # noqa: SIM905 - a block of codes reads better than 250 lines
)

# Common mistakes: the UK's ISO code is GB, Greece's is GR.
_ALIASES = {"UK": "GB", "EL": "GR"}

ANYWHERE = "*"  # a recipient anywhere (e.g. authorities in any country): always a transfer


def check_country(value: object, *, allow_anywhere: bool = False) -> str:
    if not isinstance(value, str):
        raise fail(f"expected a two-letter country code (ISO 3166-1), got {describe(value)}")
    if allow_anywhere and value == ANYWHERE:
        return value
    if value in COUNTRIES:
        return value
    upper = value.strip().upper()
    if upper in _ALIASES:
        raise fail(
            f"'{value}' is not an ISO 3166-1 country code; did you mean '{_ALIASES[upper]}'?"
        )
    if upper in COUNTRIES:
        raise fail(f"country codes are upper case: write '{upper}'")
    guess = did_you_mean(upper, COUNTRIES)
    hint = f"; did you mean '{guess}'?" if guess else " (two letters, e.g. DE, CN, US)"
    raise fail(f"'{value}' is not an ISO 3166-1 country code{hint}")


Country = Annotated[str, BeforeValidator(check_country)]


def _country_or_anywhere(value: object) -> Any:
    return check_country(value, allow_anywhere=True)


CountryOrAnywhere = Annotated[str, BeforeValidator(_country_or_anywhere)]
