"""How the report prints values (its Jinja filters; the charts' labels use them too)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from markupsafe import Markup

DASH = "–"


def number(value) -> str:
    return DASH if value is None else f"{value:,}"


def money(value) -> str:
    return DASH if value is None else f"{Decimal(value):,.2f}"


def percent(value) -> str:
    if value is None:
        return DASH
    return f"{value:.1%}" if value >= 0.001 or value == 0 else f"{value:.2%}"


def when(moment, zone: ZoneInfo) -> str:
    """An instant in billing time, to the minute."""
    if moment is None:
        return DASH
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            return moment.strftime("%Y-%m-%d %H:%M")
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return str(moment)


def day(value) -> str:
    return value.strftime("%Y-%m-%d") if value else DASH


def delta(value, kind: str = "count") -> str:
    """A change since the night before: `▲ +3`, `▼ −1.50`, `= no change`."""
    if value is None:
        return "no previous night"
    if not value:
        return "= no change"
    text = money(abs(value)) if kind == "money" else f"{abs(value):,}"
    return ("▲ +" if value > 0 else "▼ −") + text


def amounts(by_currency: dict, inline: bool = False) -> Markup:
    """Money per currency: one line each, or one line for all when `inline`."""
    items = [f"{money(amount)} {currency}" for currency, amount in sorted((by_currency or {}).items()) if amount]
    return Markup(" · " if inline else "<br>").join(items) if items else Markup("0.00")


def decimals(value: Decimal) -> int:
    """How many digits a Decimal has after its point (0 for a whole number or a special value)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0
