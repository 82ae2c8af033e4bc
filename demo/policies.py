"""The demo's access policies: an office network and working hours that keep no demo user out.

Acme blocks a documentation range (TEST-NET-3, where nobody signs in from), names its office
(the loopback addresses `make run` serves, and the documentation IPv6 range) as the break-glass
networks administrators may always use, and keeps working hours for members on the page but not
in force, so that signing in to the demo from 127.0.0.1 at any hour works.
"""

from __future__ import annotations

from datetime import time

from accounts.models import Organization, Role, User
from policies.models import NetworkAction, NetworkList
from policies.services import (
    access_policy_update,
    network_list_create,
    network_rule_create,
    time_window_create,
)

OFFICE = ["127.0.0.0/8", "::1/128", "2001:db8:ac3e::/48"]
BLOCKED = ["203.0.113.0/24"]


def seed_access_policies(*, organization: Organization, admin: User) -> None:
    """Give the organization the demo's policies, unless it has network lists already."""
    if NetworkList.objects.filter(organization=organization).exists():
        return
    office = network_list_create(
        admin=admin, organization=organization, name="Office", cidrs=OFFICE
    )
    blocked = network_list_create(
        admin=admin, organization=organization, name="Documentation range", cidrs=BLOCKED
    )
    network_rule_create(
        admin=admin,
        organization=organization,
        role="",
        action=NetworkAction.BLOCK,
        network_list=blocked,
    )
    access_policy_update(
        admin=admin,
        organization=organization,
        time_zone="Europe/Berlin",
        break_glass=office,
        max_sessions=None,
        session_limit_action="end_oldest",
    )
    time_window_create(
        admin=admin,
        organization=organization,
        role=Role.MEMBER,
        days=[1, 2, 3, 4, 5],
        starts=time(7, 0),
        ends=time(19, 0),
        active=False,
    )
