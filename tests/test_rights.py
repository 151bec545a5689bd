"""Every aid says, rule by rule, whether it is for the youth, and why."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests.catalogue import DEFAULT_PARAMETERS, ensure_catalogue
from paris_avenir.aid_requests.kinds.base import Verdict
from paris_avenir.aid_requests.models import Aid, AidCode
from paris_avenir.youths.models import EmploymentSituation, HousingSituation, Youth
from tests.factories import create_youth
from tests.helpers import sign_in_as

TODAY = date(2026, 11, 27)


def youth_of(**values: object) -> Youth:
    defaults: dict[str, object] = {
        "ase_ref": "X",
        "first_name": "A",
        "last_name": "B",
        "birth_date": date(2005, 1, 1),
        "ase_exit_date": date(2023, 1, 1),
        "employment_situation": EmploymentSituation.JOB_SEEKING,
        "housing_situation": HousingSituation.TEMPORARY,
        "monthly_income_cents": 0,
        "has_family_support": False,
        "in_higher_education": False,
        "lives_in_ile_de_france": True,
    }
    defaults.update(values)
    return Youth(**defaults)


def verdict(code: AidCode, youth: Youth) -> Verdict:
    return catalogue.kind(code).eligibility(youth, DEFAULT_PARAMETERS[code], TODAY).verdict


@pytest.mark.parametrize(
    ("code", "values", "expected"),
    [
        (AidCode.ALLOCATION, {}, Verdict.MET),
        (
            AidCode.ALLOCATION,
            {"employment_situation": EmploymentSituation.PERMANENT_JOB},
            Verdict.NOT_MET,
        ),
        (AidCode.ALLOCATION, {"monthly_income_cents": None}, Verdict.UNKNOWN),
        (AidCode.ALLOCATION, {"monthly_income_cents": 120000}, Verdict.NOT_MET),
        (AidCode.ALLOCATION, {"birth_date": date(2001, 11, 26)}, Verdict.NOT_MET),  # 25 yesterday
        (AidCode.ALLOCATION, {"birth_date": date(2009, 1, 1)}, Verdict.NOT_MET),  # 17
        (AidCode.NAVIGO, {"birth_date": date(2005, 11, 28)}, Verdict.MET),  # 21 tomorrow
        (AidCode.NAVIGO, {"birth_date": date(2005, 11, 27)}, Verdict.NOT_MET),  # 21 today
        (AidCode.NAVIGO, {"lives_in_ile_de_france": False}, Verdict.NOT_MET),
        (AidCode.BOURSE, {"in_higher_education": True}, Verdict.MET),
        (AidCode.BOURSE, {}, Verdict.UNKNOWN),
        (AidCode.LOGEMENT, {"housing_situation": HousingSituation.STABLE}, Verdict.NOT_MET),
        (AidCode.LOGEMENT, {"housing_situation": HousingSituation.STREET}, Verdict.MET),
        (AidCode.GARANTIE_FSL, {}, Verdict.UNKNOWN),
        (AidCode.PSYCHOLOGUE, {"birth_date": date(2001, 1, 1)}, Verdict.MET),
        (AidCode.AIDE_URGENCE, {"ase_exit_date": None}, Verdict.MET),
        (AidCode.PREMIER_EMPLOI, {"ase_exit_date": None}, Verdict.UNKNOWN),
    ],
)
def test_each_rule_gives_its_verdict(
    code: AidCode, values: dict[str, object], expected: Verdict
) -> None:
    assert verdict(code, youth_of(**values)) is expected


def test_a_failed_condition_says_what_to_do_next() -> None:
    eligibility = catalogue.kind(AidCode.ALLOCATION).eligibility(
        youth_of(employment_situation=EmploymentSituation.PERMANENT_JOB),
        DEFAULT_PARAMETERS[AidCode.ALLOCATION],
        TODAY,
    )
    failed = [
        condition for condition in eligibility.conditions if condition.verdict is Verdict.NOT_MET
    ]
    assert [condition.text for condition in failed] == ["Vous n’avez pas de CDI."]
    assert failed[0].next_step and "prime d’activité" in failed[0].next_step


def test_the_allocation_says_first_what_the_youth_gets() -> None:
    gives = catalogue.kind(AidCode.ALLOCATION).gives(DEFAULT_PARAMETERS[AidCode.ALLOCATION])
    assert gives.startswith("651,69\u00a0€ chaque mois")


def test_every_aid_of_the_programme_is_in_the_catalogue() -> None:
    assert {kind.code for kind in catalogue.all_kinds()} == set(AidCode)


async def test_an_admin_change_of_parameters_changes_the_answer(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    ensure_catalogue(session)
    youth = create_youth(session, birth_date=date(2004, 1, 1), ase_exit_date=date(2022, 1, 1))
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    page = await client.get("/mon-espace/droits/navigo")
    assert (
        "Vous avez entre 18 et 21 ans." in page.text and "Pas pour vous en ce moment" in page.text
    )
    navigo = session.scalars(select(Aid).where(Aid.code == AidCode.NAVIGO)).one()
    navigo.parameters = {**navigo.parameters, "max_age": 26}
    allocation = session.scalars(select(Aid).where(Aid.code == AidCode.ALLOCATION)).one()
    allocation.parameters = {**allocation.parameters, "monthly_amount_cents": 70000}
    session.commit()
    page = await client.get("/mon-espace/droits/navigo")
    assert "Vous avez entre 18 et 26 ans." in page.text and "Vous y avez droit" in page.text
    assert "700,00\u00a0€ chaque mois" in (await client.get("/mon-espace/droits")).text


async def test_the_rights_page_lists_every_aid_and_the_national_rights(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    ensure_catalogue(session)
    youth = create_youth(session)
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    page = (await client.get("/mon-espace/droits")).text
    for kind in catalogue.all_kinds():
        assert f'href="/mon-espace/droits/{kind.code.value}"' in page
    for signpost in ("APL", "Prime d’activité", "CEJ", "CROUS", "Complémentaire santé solidaire"):
        assert signpost in page
    assert "https://www.ameli.fr" in page


async def test_an_unknown_aid_is_a_404(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session)
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    assert (await client.get("/mon-espace/droits/loterie")).status_code == 404
