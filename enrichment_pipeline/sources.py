"""The enrichment sources, their freshness and the per-company outcomes: named once, used everywhere."""

from dataclasses import dataclass

SOURCES: tuple[str, ...] = ("company_roles", "annual_accounts", "sub_units", "address_location", "website_profile")
OUTCOMES: tuple[str, ...] = ("ok", "not_found", "deleted", "gone", "error", "skipped")


@dataclass(frozen=True)
class Freshness:
    """How long a source's answer stays good, and when Dagster asks every batch to refresh it.

    `max_age_days` is a little shorter than the cron's period, so the refresh at each tick finds
    every answer of the previous tick stale even when that run finished late.
    """

    cron: str
    max_age_days: int
    label: str


# Oslo time; staggered so two full refreshes never start at once.
FRESHNESS: dict[str, Freshness] = {
    "company_roles": Freshness("0 1 1 * *", 25, "monthly"),  # boards and CEOs change often
    "annual_accounts": Freshness("0 1 15 8 *", 350, "yearly"),  # filed by 31 July, published over the summer
    "sub_units": Freshness("0 1 8 * *", 25, "monthly"),
    "address_location": Freshness("0 1 22 1,4,7,10 *", 80, "quarterly"),  # addresses rarely move
    "website_profile": Freshness("0 1 1 2,5,8,11 *", 80, "quarterly"),
}
CRON_TIMEZONE = "Europe/Oslo"

# The share of a step's lookups that may end in error before the step fails, so an outage is
# never marked done. The registers answer every well-formed request; home pages are third-party
# sites of which some are always broken (redirect loops, oversized, too slow), so 5% would fail a
# healthy run there, while an outage (no network) still fails every fetch.
ERROR_THRESHOLD_DEFAULT = 0.05
ERROR_THRESHOLDS: dict[str, float] = {"website_profile": 0.25}


def error_threshold(source: str) -> float:
    return ERROR_THRESHOLDS.get(source, ERROR_THRESHOLD_DEFAULT)
