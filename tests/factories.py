"""factory_boy factories of the accounts models, and `member()` for a user in an organization.

Create with `OrganizationFactory.create(...)`: factory_boy types `create()` as the model, while
calling the factory class itself is typed as the factory.
"""

from __future__ import annotations

from typing import Any

import factory

from accounts.models import Membership, Organization, Role, Tier, User

PASSWORD = "correct horse battery staple"


class OrganizationFactory(factory.django.DjangoModelFactory[Organization]):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    tier = Tier.MEDIUM_BUSINESS


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.django.Password(PASSWORD)


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.MEMBER


def member(
    organization: Organization | None = None, role: str = Role.MEMBER, **kwargs: Any
) -> User:
    """A user with a membership (in a new organization unless one is given)."""
    organization = organization or OrganizationFactory.create()
    user = UserFactory.create(**kwargs)
    MembershipFactory.create(user=user, organization=organization, role=role)
    return User.objects.select_related("membership__organization").get(pk=user.pk)
