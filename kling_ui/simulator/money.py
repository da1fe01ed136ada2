"""Money as the simulator keeps it: the rates, credits and dollars, the pricing block the
catalogue shows, what a job costs by it, and each key's account.

As the vendor documents it (aimlapi/complete-model-list.md, account-balance.md,
request-tracing-and-cost.md): the catalogue prices the model as ``variants`` on
``generate_audio``, per second of video; each key has one account, starting at ``balance``
and going down by a job's charge once it completes; a job that ends in error is never
charged. Money is kept in credits (integers), so a balance never drifts by float rounding.

Written for the simulator alone (the client reads prices its own way). Imports nothing of
ours outside this package; ``Accounts`` settles the jobs of ``jobs.py`` (by duck type).
"""

from __future__ import annotations

from typing import Any

USD_PER_CREDIT = 0.0000005  # the vendor's own examples: 500000 credits are $0.25
# Kling v2.6 Pro's price per second of video, by generate_audio. The vendor prints no Kling
# price on the model's page (CONTRACT.md) and the docs give none: these are plausible figures,
# issue 12's own ("10 s with audio: $1.40"), audio doubling the price as the issue says.
USD_PER_SECOND = {True: 0.14, False: 0.07}
CREDITS_PER_SECOND = {audio: round(usd / USD_PER_CREDIT) for audio, usd in USD_PER_SECOND.items()}
DEFAULT_BALANCE = 100.0  # USD: what each key's account holds until set_balance says otherwise
PRICING_KINDS = ("fixed", "variants", "variable")


def usd(credits: int) -> float:
    return round(credits * USD_PER_CREDIT, 9)


def credits(usd: float) -> int:
    return round(usd / USD_PER_CREDIT)


def pricing_document(kind: str) -> dict[str, Any]:
    """The model's pricing block as the catalogue shows it (complete-model-list.md,
    "Reading prices"), at this simulator's rates: ``variants`` per second by generate_audio,
    ``fixed`` (the with-audio rate whatever is asked) or ``variable`` (no quote)."""
    if kind == "variants":
        return {
            "kind": "variants",
            "currency": "USD",
            "dimensions": ["generate_audio"],
            "variants": [
                {"when": {"generate_audio": audio}, "price": usd, "unit": "second", "per": 1}
                for audio, usd in USD_PER_SECOND.items()
            ],
        }
    if kind == "fixed":
        units = [{"name": "second", "price": USD_PER_SECOND[True], "per": 1}]
        return {"kind": "fixed", "currency": "USD", "units": units}
    if kind == "variable":
        return {"kind": "variable", "currency": "USD"}
    raise ValueError(f"unknown pricing kind {kind!r}: one of {PRICING_KINDS}")


def price_credits(pricing: dict[str, Any] | None, asked: dict[str, Any]) -> int:
    """What a job with the fields ``asked`` (the create's ``duration`` and ``generate_audio``)
    costs in credits by this pricing block where it quotes one, else by the default rates.
    Written for the simulator alone (the client reads prices its own way)."""
    duration, audio = int(asked["duration"]), bool(asked["generate_audio"])
    rates: list[dict[str, Any]] = []
    if isinstance(pricing, dict) and pricing.get("kind") == "variants":
        rates = [
            v
            for v in pricing.get("variants", [])
            if all(asked.get(k, ...) == w for k, w in v.get("when", {}).items())
        ][:1]
    elif isinstance(pricing, dict) and pricing.get("kind") == "fixed":
        rates = list(pricing.get("units", []))
    usd = 0.0
    try:
        for rate in rates:
            unit = rate.get("unit", rate.get("name"))
            usd += rate["price"] / rate["per"] * (duration if unit == "second" else 1)
    except (KeyError, TypeError, ZeroDivisionError, AttributeError):
        rates = []  # a block scripted without a usable rate: the default rates
    return credits(usd) if rates else duration * CREDITS_PER_SECOND[audio]


class Accounts:
    """Each key's balance in credits (by key digest), and the jobs billing has not yet seen
    end. Not locked itself: the Simulator's lock guards every call."""

    def __init__(self, balance: float) -> None:
        self.initial = credits(balance)
        self.starting = self.initial  # each key's account, until set
        self.balances: dict[str, int] = {}  # by key digest
        self.unsettled: set[str] = set()  # jobs not yet ended as far as billing knows

    def held(self, key_id: str) -> int:
        """What the key's account holds, in credits (as of the last settle)."""
        return self.balances.get(key_id, self.starting)

    def set(self, usd: float, key_id: str | None = None) -> None:
        """Put ``usd`` in one account, or (no key) in every account, those not used yet too."""
        if key_id is None:
            self.starting = credits(usd)
            self.balances.clear()
        else:
            self.balances[key_id] = credits(usd)

    def reset(self) -> None:
        """Every account back to the constructor's balance."""
        self.starting = self.initial
        self.balances.clear()

    def settle(self, jobs: dict[str, Any], now: float) -> None:
        """Take the charge of every job that has completed since the last look from its key's
        account; a job that ended in error costs nothing. Statuses are worked out lazily, so
        the money moves when someone looks, as if it had moved when the job completed."""
        for job_id in list(self.unsettled):
            job = jobs.get(job_id)
            status = job.status(now) if job is not None else "error"
            if status not in ("completed", "error"):
                continue
            self.unsettled.discard(job_id)
            if job is not None and status == "completed":
                held = self.balances.get(job.key_id, self.starting)
                self.balances[job.key_id] = held - job.charge_credits()

    def to_state(self) -> dict[str, Any]:
        return {
            "starting": self.starting,
            "balances": self.balances,
            "unsettled": sorted(self.unsettled),
        }

    def load_state(self, billing: dict[str, Any], job_ids: set[str]) -> None:
        """Read ``to_state``'s dict back; a state file without billing (an older version)
        has its jobs settled already."""
        self.starting = int(billing.get("starting", self.starting))
        self.balances = {str(k): int(v) for k, v in billing.get("balances", {}).items()}
        self.unsettled = set(billing.get("unsettled", [])) & job_ids
