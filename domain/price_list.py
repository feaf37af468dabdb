"""The clinic's price list: tax categories with their rates, and services with a price, a currency and a category.

Price changes are events; an invoice line copies the price and rate in force when it was drafted and keeps them.
A doctor's consultation fee (their profile) is the price of their visits; the service CONSULTATION, when listed,
gives those lines their tax category.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.invoice import tax_rate
from domain.money import currency, exact_amount, text
from domain.shared import Cause, InvalidInputError

CONSULTATION = "consultation"
NO_SHOW = "no_show"


class ServiceKind(StrEnum):
    CONSULTATION = "consultation"
    PROCEDURE = "procedure"
    TEST = "test"
    FEE = "fee"
    OTHER = "other"


class UnknownServiceError(InvalidInputError):
    code = "unknown_service"


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    kind: ServiceKind
    price: Decimal
    currency: str
    tax_category: str

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "name": self.name,
            "kind": self.kind.value,
            "price": text(self.price),
            "currency": self.currency,
            "tax_category": self.tax_category,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Service:
        return cls(data["code"], data["name"], ServiceKind(data["kind"]), Decimal(data["price"]), data["currency"], data["tax_category"])


class PriceList(Aggregate):
    TOPIC = "medledger:PriceList"

    class Created(Aggregate.Created):
        TOPIC = "medledger:PriceList.Created"

    @event("Opened", topic="medledger:PriceList.Opened.v1")
    def __init__(self, id: UUID, clinic: str) -> None:  # noqa: A002 - one per clinic
        self.clinic = clinic
        self.tax_categories: dict[str, Decimal] = {}
        self.services: dict[str, Service] = {}
        self.retired: dict[str, Service] = {}

    def set_tax_category(self, category: str, rate: Any, cause: Cause) -> None:
        rate = tax_rate(rate, "rate")
        if self.tax_categories.get(category) != rate:
            self._tax_category_set(category, text(rate), cause.as_dict())

    def set_service(self, code: str, name: str, kind: ServiceKind, price: Any, currency_code: str, tax_category: str, cause: Cause) -> None:
        """Lists a service or changes its price, name, kind or category (also brings a retired service back)."""
        code_ = currency(currency_code)
        if tax_category not in self.tax_categories:
            raise InvalidInputError(f"No tax category {tax_category!r}; set it first.", field="tax_category")
        service = Service(code, name, kind, exact_amount(price, code_, "price"), code_, tax_category)
        if self.services.get(code) != service:
            self._service_priced(service.as_dict(), cause.as_dict())

    def retire_service(self, code: str, cause: Cause) -> None:
        if code in self.retired and code not in self.services:
            return
        self.service(code)
        self._service_retired(code, cause.as_dict())

    def service(self, code: str) -> Service:
        if code not in self.services:
            raise UnknownServiceError(f"The price list has no service {code!r}.", field="service_code")
        return self.services[code]

    def rate(self, category: str) -> Decimal:
        return self.tax_categories[category]

    def view(self) -> dict[str, Any]:
        return {
            "tax_categories": [{"category": c, "rate": text(r)} for c, r in sorted(self.tax_categories.items())],
            "services": [
                {**s.as_dict(), "tax_rate": text(self.tax_categories[s.tax_category])} for _, s in sorted(self.services.items())
            ],
            "version": self.version,
        }

    @event("TaxCategorySet", topic="medledger:PriceList.TaxCategorySet.v1")
    def _tax_category_set(self, category: str, rate: str, cause: dict[str, Any]) -> None:
        self.tax_categories[category] = Decimal(rate)

    @event("ServicePriced", topic="medledger:PriceList.ServicePriced.v1")
    def _service_priced(self, service: dict[str, Any], cause: dict[str, Any]) -> None:
        self.services[service["code"]] = Service.from_dict(service)
        self.retired.pop(service["code"], None)

    @event("ServiceRetired", topic="medledger:PriceList.ServiceRetired.v1")
    def _service_retired(self, code: str, cause: dict[str, Any]) -> None:
        self.retired[code] = self.services.pop(code)
