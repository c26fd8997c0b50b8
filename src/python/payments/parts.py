"""The payments service's own objects, held on its context (`own`): what its routes
and listeners reach besides the database and the outbox."""

from __future__ import annotations

from dataclasses import dataclass

from common.context import ServiceContext, own_of
from payments.providers import PaymentProvider
from payments.settlement import Settler


@dataclass(frozen=True)
class PaymentsParts:
    provider: PaymentProvider
    settler: Settler


def parts_of(context: ServiceContext) -> PaymentsParts:
    return own_of(context, PaymentsParts)
