"""Settings → Security → Email domains: the model's rules, the page (who may use it, bad input),
proof by a DNS TXT record against a real DNS server, and the platform operator's admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.domains import FREE_MAIL_DOMAINS, domain_normalise, domain_validate
from accounts.models import DomainProof, OrganizationDomain, Role
from audit.models import EventType
from demo.seed import seed_demo

from .dns_support import DnsServer
from .factories import OrganizationFactory, UserFactory, member
from .helpers import client_as, events

pytestmark = pytest.mark.django_db

URL = reverse("accounts:domains")


def verify_url(domain: OrganizationDomain) -> str:
    return reverse("accounts:domain-verify", kwargs={"domain_id": domain.pk})


def remove_url(domain: OrganizationDomain) -> str:
    return reverse("accounts:domain-remove", kwargs={"domain_id": domain.pk})


def pending(organization, domain: str) -> OrganizationDomain:
    return OrganizationDomain.objects.create(organization=organization, domain=domain)


def verified(organization, domain: str, proof: str = DomainProof.OPERATOR) -> OrganizationDomain:
    return OrganizationDomain.objects.create(
        organization=organization, domain=domain, proof=proof, verified_at=timezone.now()
    )


def domain_changes() -> list[dict[str, Any]]:
    return [
        event.details
        for event in events(EventType.SETTINGS_CHANGED)
        if event.details.get("setting") == "email_domain"
    ]


@pytest.fixture
def dns_server(settings):
    """A DNS server of the test's own, which verification asks (and nothing else)."""
    with DnsServer() as server:
        settings.DOMAIN_VERIFICATION_NAMESERVERS = [server.address]
        settings.DOMAIN_VERIFICATION_TIMEOUT_SECONDS = 2.0
        yield server


# --- The model's rules -------------------------------------------------------------------------


def test_a_domain_is_verified_by_one_organization_only(org):
    verified(org, "acme.test")
    with pytest.raises(IntegrityError), transaction.atomic():
        verified(OrganizationFactory.create(), "acme.test")


def test_several_organizations_may_list_a_domain_while_it_is_pending(org):
    verified(org, "acme.test")
    pending(OrganizationFactory.create(), "acme.test")
    pending(OrganizationFactory.create(), "acme.test")
    assert OrganizationDomain.objects.filter(domain="acme.test").count() == 3


def test_an_organization_lists_a_domain_once(org):
    pending(org, "acme.test")
    with pytest.raises(IntegrityError), transaction.atomic():
        pending(org, "acme.test")


@pytest.mark.parametrize("stored", ["Acme.test", "acme.test.", ""])
def test_the_database_refuses_a_domain_not_normalised(org, stored):
    with pytest.raises(IntegrityError), transaction.atomic():
        pending(org, stored)


def test_a_verified_domain_says_how_it_was_proved(org):
    with pytest.raises(IntegrityError), transaction.atomic():
        OrganizationDomain.objects.create(
            organization=org, domain="acme.test", verified_at=timezone.now()
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        OrganizationDomain.objects.create(
            organization=org, domain="acme.test", proof=DomainProof.DNS_TXT
        )


def test_each_domain_gets_its_own_token(org):
    first, second = pending(org, "acme.test"), pending(org, "acme.example")
    assert len(first.verification_token) == 32
    assert first.verification_token != second.verification_token


# --- What a valid domain is --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Acme.TEST", "acme.test"),
        (" acme.test. ", "acme.test"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("mail.eu.acme.test", "mail.eu.acme.test"),
    ],
)
def test_domains_are_stored_lower_case_in_idna_form(typed, stored):
    assert domain_normalise(typed) == stored


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "Enter a domain"),
        ("acme", "at least one dot"),
        ("admin@acme.test", "the domain alone"),
        ("https://acme.test/", "the domain alone"),
        ("acme.test:443", "the domain alone"),
        ("192.0.2.1", "not an IP address"),
        ("acme..test", "is not a domain name"),
        ("-acme.test", "is not a domain name"),
        ("ac_me.test", "is not a domain name"),
        ("a" * 64 + ".test", "is not a domain name"),
        (".".join(["abcdefghi"] * 26) + ".test", "at most 253 characters"),
        ("acme.123", "is not a domain name"),
        ("acme test.com", "is not a domain name"),
    ],
)
def test_malformed_domains_are_refused_saying_why(typed, says):
    with pytest.raises(ValidationError) as refused:
        domain_normalise(typed)
    assert says in refused.value.messages[0]


@pytest.mark.parametrize("domain", ["gmail.com", "Outlook.com", "yahoo.com."])
def test_public_mail_services_are_refused(domain):
    with pytest.raises(ValidationError) as refused:
        domain_validate(domain)
    assert "public email service" in refused.value.messages[0]
    assert domain_normalise(domain) in FREE_MAIL_DOMAINS


# --- Who may use the page ----------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("role", [Role.MEMBER, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER])
def test_only_administrators_manage_domains(org, role):
    domain = pending(org, "acme.test")
    client = client_as(member(org, role))
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"domain": "acme.example"}).status_code == 403
    assert client.post(verify_url(domain)).status_code == 403
    assert client.post(remove_url(domain)).status_code == 403
    assert list(OrganizationDomain.objects.values_list("domain", flat=True)) == ["acme.test"]
    assert domain_changes() == []


def test_a_platform_user_without_an_organization_is_refused():
    client = client_as(UserFactory.create(is_staff=True, is_superuser=True))
    assert client.get(URL).status_code == 403


def test_another_organizations_administrator_cannot_touch_our_domains(org, dns_server):
    ours = pending(org, "acme.test")
    dns_server.publish(
        f"_activity-monitor.{ours.domain}",
        f"activity-monitor-verification={ours.verification_token}",
    )
    theirs = client_as(member(OrganizationFactory.create(), Role.ADMINISTRATOR))

    assert "acme.test" not in theirs.get(URL).content.decode()
    assert theirs.post(verify_url(ours)).status_code == 404
    assert theirs.get(remove_url(ours)).status_code == 404
    assert theirs.post(remove_url(ours)).status_code == 404
    ours.refresh_from_db()
    assert not ours.is_verified
    assert dns_server.queries == []
    assert domain_changes() == []


def test_settings_security_links_the_page_for_administrators_only(org, admin):
    link = f'href="{URL}"'
    assert link in client_as(admin).get(reverse("accounts:security-settings")).content.decode()
    analyst = client_as(member(org, Role.SECURITY_ANALYST))
    assert link not in analyst.get(reverse("accounts:security-settings")).content.decode()


# --- Adding and removing ------------------------------------------------------------------------


def test_an_administrator_adds_a_domain_and_is_shown_the_record_to_publish(org, admin):
    client = client_as(admin)
    response = client.post(URL, {"domain": "Acme.TEST"})
    assert response.status_code == 303
    [domain] = OrganizationDomain.objects.filter(organization=org)
    assert (domain.domain, domain.is_verified, domain.proof) == ("acme.test", False, "")
    assert domain.created_by == admin

    page = client.get(URL).content.decode()
    assert f"activity-monitor-verification={domain.verification_token}" in page
    assert "_activity-monitor.acme.test" in page
    [change] = events(EventType.SETTINGS_CHANGED)
    assert change.organization_id == org.pk
    assert change.actor_id == admin.pk
    assert change.details == {
        "setting": "email_domain",
        "domain": "acme.test",
        "old": None,
        "new": {"status": "pending"},
    }
    assert domain.verification_token not in str(change.details)


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("acme", "at least one dot"),
        ("admin@acme.test", "the domain alone"),
        ("gmail.com", "public email service"),
        ("", "Enter a domain"),
        ("x" * 400, "at most 300 characters"),
        ("acme\x00.test", "Null characters are not allowed"),
    ],
)
def test_bad_input_is_refused_with_a_message(org, admin, typed, says):
    response = client_as(admin).post(URL, {"domain": typed})
    assert response.status_code == 400
    assert says in response.content.decode()
    assert not OrganizationDomain.objects.exists()
    assert domain_changes() == []


def test_a_domain_another_organization_verified_is_refused(org, admin):
    verified(OrganizationFactory.create(), "acme.test")
    response = client_as(admin).post(URL, {"domain": "acme.test"})
    assert response.status_code == 409
    assert "verified by another organization" in response.content.decode()
    assert not OrganizationDomain.objects.filter(organization=org).exists()


def test_a_domain_listed_already_is_refused(org, admin):
    pending(org, "acme.test")
    response = client_as(admin).post(URL, {"domain": "ACME.test"})
    assert response.status_code == 409
    assert "acme.test is already listed" in response.content.decode()


def test_an_organization_lists_a_bounded_number_of_domains(org, admin, settings):
    settings.ORGANIZATION_DOMAINS_MAX = 2
    client = client_as(admin)
    assert client.post(URL, {"domain": "one.test"}).status_code == 303
    assert client.post(URL, {"domain": "two.test"}).status_code == 303
    response = client.post(URL, {"domain": "three.test"})
    assert response.status_code == 409
    assert "at most 2 domains" in response.content.decode()
    assert OrganizationDomain.objects.filter(organization=org).count() == 2


def test_removing_asks_first_then_removes_and_records_it(org, admin):
    domain = verified(org, "acme.test")
    client = client_as(admin)
    confirm = client.get(remove_url(domain))
    assert confirm.status_code == 200
    assert "Remove acme.test?" in confirm.content.decode()
    assert OrganizationDomain.objects.filter(pk=domain.pk).exists()

    response = client.post(remove_url(domain), follow=True)
    assert "Removed acme.test." in response.content.decode()
    assert not OrganizationDomain.objects.filter(pk=domain.pk).exists()
    assert domain_changes() == [
        {
            "setting": "email_domain",
            "domain": "acme.test",
            "old": {"status": "verified", "proof": "operator"},
            "new": None,
        }
    ]


# --- Proof by DNS --------------------------------------------------------------------------------


def test_a_txt_record_at_its_own_name_verifies_the_domain(org, admin, dns_server):
    domain = pending(org, "acme.test")
    dns_server.publish(
        "_activity-monitor.acme.test", f"activity-monitor-verification={domain.verification_token}"
    )
    response = client_as(admin).post(verify_url(domain), follow=True)
    assert "acme.test is verified." in response.content.decode()
    domain.refresh_from_db()
    assert domain.proof == DomainProof.DNS_TXT
    assert domain.verified_at is not None
    assert ("_activity-monitor.acme.test", "TXT") in dns_server.queries
    assert domain_changes() == [
        {
            "setting": "email_domain",
            "domain": "acme.test",
            "old": {"status": "pending"},
            "new": {"status": "verified", "proof": "dns_txt"},
        }
    ]


def test_a_txt_record_at_the_domain_itself_verifies_it_even_in_several_strings(
    org, admin, dns_server
):
    domain = pending(org, "acme.test")
    token = domain.verification_token
    dns_server.publish("acme.test", "v=spf1 -all")
    dns_server.publish("acme.test", "activity-monitor-", f"verification={token}")
    response = client_as(admin).post(verify_url(domain))
    assert response.status_code == 303
    domain.refresh_from_db()
    assert domain.is_verified


def test_a_unicode_domain_is_looked_up_by_its_idna_name(org, admin, dns_server):
    client = client_as(admin)
    client.post(URL, {"domain": "Bücher.example"})
    domain = OrganizationDomain.objects.get(organization=org)
    assert domain.domain == "xn--bcher-kva.example"
    assert "bücher.example" in client.get(URL).content.decode()
    dns_server.publish(
        "_activity-monitor.xn--bcher-kva.example",
        f"activity-monitor-verification={domain.verification_token}",
    )
    assert client.post(verify_url(domain)).status_code == 303
    domain.refresh_from_db()
    assert domain.is_verified


def test_a_record_with_another_token_does_not_verify(org, admin, dns_server):
    domain = pending(org, "acme.test")
    dns_server.publish("_activity-monitor.acme.test", "activity-monitor-verification=0123abcd")
    response = client_as(admin).post(verify_url(domain))
    assert response.status_code == 409
    assert "has a verification record, but not this one" in response.content.decode()
    domain.refresh_from_db()
    assert not domain.is_verified
    assert domain_changes() == []


def test_no_record_says_so(org, admin, dns_server):
    domain = pending(org, "acme.test")
    dns_server.publish("acme.test", "v=spf1 -all")
    response = client_as(admin).post(verify_url(domain))
    assert response.status_code == 409
    page = response.content.decode()
    assert "No TXT record" in page
    assert f"activity-monitor-verification={domain.verification_token}" in page
    domain.refresh_from_db()
    assert not domain.is_verified


def test_a_domain_that_does_not_exist_in_dns_says_so(org, admin, dns_server):
    domain = pending(org, "acme.test")
    response = client_as(admin).post(verify_url(domain))
    assert response.status_code == 409
    assert "exists in DNS" in response.content.decode()
    assert {name for name, _ in dns_server.queries} == {"_activity-monitor.acme.test", "acme.test"}
    domain.refresh_from_db()
    assert not domain.is_verified


def test_a_dns_server_that_never_answers_is_a_message_not_an_error(org, admin, settings):
    domain = pending(org, "acme.test")
    with DnsServer(silent=True) as silent:
        settings.DOMAIN_VERIFICATION_NAMESERVERS = [silent.address]
        settings.DOMAIN_VERIFICATION_TIMEOUT_SECONDS = 0.3
        response = client_as(admin).post(verify_url(domain))
    assert response.status_code == 409
    assert "did not complete (no answer in time)" in response.content.decode()
    assert silent.queries  # it was asked
    domain.refresh_from_db()
    assert not domain.is_verified
    assert domain_changes() == []


def test_a_domain_verified_by_another_organization_meanwhile_is_refused(org, admin, dns_server):
    domain = pending(org, "acme.test")
    dns_server.publish(
        "_activity-monitor.acme.test", f"activity-monitor-verification={domain.verification_token}"
    )
    verified(OrganizationFactory.create(), "acme.test")
    response = client_as(admin).post(verify_url(domain))
    assert response.status_code == 409
    assert "verified by another organization" in response.content.decode()
    domain.refresh_from_db()
    assert not domain.is_verified


def test_verifying_a_verified_domain_changes_nothing(org, admin):
    domain = verified(org, "acme.test")
    response = client_as(admin).post(verify_url(domain), follow=True)
    assert "acme.test is already verified." in response.content.decode()
    domain.refresh_from_db()
    assert domain.proof == DomainProof.OPERATOR
    assert domain_changes() == []


# --- The platform operator (Django admin) --------------------------------------------------------

ADMIN_ADD = reverse("admin:accounts_organizationdomain_add")
ADMIN_LIST = reverse("admin:accounts_organizationdomain_changelist")


@pytest.fixture
def operator():
    return UserFactory.create(email="ops@platform.test", is_staff=True, is_superuser=True)


def test_the_operator_adds_a_domain_verified_without_dns(org, operator):
    response = client_as(operator).post(ADMIN_ADD, {"organization": org.pk, "domain": "Acme.TEST"})
    assert response.status_code == 302
    domain = OrganizationDomain.objects.get(organization=org)
    assert (domain.domain, domain.proof) == ("acme.test", DomainProof.OPERATOR)
    assert domain.verified_at is not None
    [change] = events(EventType.SETTINGS_CHANGED)
    assert change.organization_id == org.pk
    assert change.actor_label == "ops@platform.test"
    assert change.details["new"] == {"status": "verified", "proof": "operator"}


@pytest.mark.parametrize(
    ("typed", "says"),
    [("gmail.com", "public email service"), ("not a domain", "is not a domain name")],
)
def test_the_operator_is_refused_bad_domains_too(org, operator, typed, says):
    response = client_as(operator).post(ADMIN_ADD, {"organization": org.pk, "domain": typed})
    assert response.status_code == 200  # the form again, with the error
    assert says in response.content.decode()
    assert not OrganizationDomain.objects.exists()


def test_the_operator_cannot_give_one_organization_anothers_verified_domain(org, operator):
    verified(org, "acme.test")
    other = OrganizationFactory.create()
    response = client_as(operator).post(
        ADMIN_ADD, {"organization": other.pk, "domain": "acme.test"}
    )
    assert response.status_code == 200
    assert "verified by another organization" in response.content.decode()
    assert not OrganizationDomain.objects.filter(organization=other).exists()


def test_the_operator_marks_a_pending_domain_verified(org, operator):
    domain = pending(org, "acme.test")
    response = client_as(operator).post(
        ADMIN_LIST, {"action": "mark_verified", "_selected_action": [domain.pk]}
    )
    assert response.status_code == 302
    domain.refresh_from_db()
    assert domain.proof == DomainProof.OPERATOR
    assert domain_changes()[-1]["old"] == {"status": "pending"}


def test_the_operator_removes_domains_with_a_record_of_each(org, operator):
    first, second = verified(org, "acme.test"), pending(org, "acme.example")
    client_as(operator).post(
        ADMIN_LIST, {"action": "remove", "_selected_action": [first.pk, second.pk]}
    )
    assert not OrganizationDomain.objects.exists()
    assert sorted(change["domain"] for change in domain_changes()) == ["acme.example", "acme.test"]


def test_an_organization_administrator_cannot_use_the_operators_admin(org, admin):
    response = client_as(admin).post(ADMIN_ADD, {"organization": org.pk, "domain": "acme.test"})
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert not OrganizationDomain.objects.exists()


# --- The demo ---------------------------------------------------------------------------------


def test_the_demo_organizations_own_their_domains_set_by_the_operator():
    seed_demo(days=1)
    rows = OrganizationDomain.objects.select_related("organization").order_by("domain")
    assert [(d.organization.slug, d.domain, d.proof) for d in rows] == [
        ("acme", "acme.test", DomainProof.OPERATOR),
        ("globex", "globex.test", DomainProof.OPERATOR),
        ("initech", "initech.test", DomainProof.OPERATOR),
    ]
    seed_demo(days=1)  # a second run adds nothing
    assert OrganizationDomain.objects.count() == 3


def test_a_nameserver_setting_that_is_not_an_address_is_a_message_and_a_warning(
    org, admin, settings, caplog
):
    settings.DOMAIN_VERIFICATION_NAMESERVERS = ["dns.example.test"]
    domain = pending(org, "acme.test")
    response = client_as(admin).post(verify_url(domain))
    assert response.status_code == 409
    assert "did not complete" in response.content.decode()
    assert "no usable DNS server" in caplog.text
