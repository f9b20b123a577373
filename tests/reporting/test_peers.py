"""Peer percentiles and sector figures (reporting.peers): k >= 5 suppression, positions, and
differencing attacks on constructed data. Each attack is first run against the computation a
first implementation would publish (``naive_figures``, ``naive_percentile``, written here) to show
that it works, then against the module to show that it does not. Pure: no database."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mamori.reporting.peers import (
    POOLED,
    SECTOR,
    Cohort,
    K,
    form_cohort,
    group_statistics,
    position,
    publish,
    quarter_of,
    quarter_start,
    snap,
)

Q2 = dt.date(2025, 4, 1)
DAY = dt.date(2025, 5, 12)
NEXT = DAY + dt.timedelta(days=1)
STEP = 5.0
SECRET = 27.13
# The values an attacker might consider for a secret: 0 to 100 in steps of 0.05, and the secret.
CANDIDATES = sorted({round(i * 0.05, 2) for i in range(2001)} | {SECRET})


# --------------------------------------------------------------------------------------------
# The naive computation the attacks are shown to work against


def naive_figures(values: Mapping[str, float | None], category_of: Mapping[str, str]) -> dict:
    """What a first implementation publishes each day: for the sector and each category with at
    least K organisations that have a value today, the count, the mean and exact quartiles;
    smaller categories hidden."""
    present = {org: v for org, v in values.items() if v is not None and org in category_of}
    members: dict[str, list[str]] = {"sector": sorted(present)}
    for org in sorted(present):
        members.setdefault(category_of[org], []).append(org)
    figures = {}
    for group, orgs in members.items():
        if len(orgs) >= K:
            xs = np.array([present[org] for org in orgs])
            figures[group] = {
                "n": len(xs),
                "mean": float(xs.mean()),
                **{f"p{p}": float(np.quantile(xs, p / 100)) for p in (25, 50, 75)},
            }
    return figures


def naive_percentile(values: Mapping[str, float], org: str) -> float:
    """The exact mid-rank percentile of ``org`` among ``values`` (higher is better)."""
    own = values[org]
    below = sum(1 for v in values.values() if v < own)
    equal = sum(1 for v in values.values() if v == own)
    return 100 * (below + equal / 2) / len(values)


def ours(values, category_of, day, cohort, **kwargs) -> dict:
    """The module's publication without its date, so two days' figures can be compared."""
    published = publish(values, category_of, "higher", day, cohort, step=STEP, **kwargs)
    del published["day"], published["quarter"]
    return published


def consistent(candidates: list[float], world: Callable[[float], object], seen: object) -> list:
    """The candidate secrets under which the world publishes exactly what was seen: all that an
    attacker who knows everything else (every other organisation's value) can narrow it to."""
    return [x for x in candidates if world(x) == seen]


# --------------------------------------------------------------------------------------------
# Attack 1: the sector minus the categories shown


def test_sector_minus_shown_categories_gives_a_small_category_naively_but_not_here():
    values = (
        {f"bank-{i}": 60.0 + 3 * i for i in range(8)}
        | {f"shinkin-{i}": 40.0 + 5 * i for i in range(6)}
        | {"labour-0": 37.3}
    )
    category_of = {org: org.split("-")[0] for org in values}

    naive = naive_figures(values, category_of)
    assert "labour" not in naive  # the lone labour bank is hidden...
    shown = [group for group in naive if group != "sector"]
    left_n = naive["sector"]["n"] - sum(naive[g]["n"] for g in shown)
    left_sum = naive["sector"]["n"] * naive["sector"]["mean"] - sum(
        naive[g]["n"] * naive[g]["mean"] for g in shown
    )
    assert left_n == 1
    assert left_sum == pytest.approx(37.3, abs=1e-9)  # ...and comes back exactly

    cohort = form_cohort(values, category_of, Q2)
    published = publish(values, category_of, "higher", DAY, cohort, step=STEP)
    groups = published["groups"]
    assert "labour" not in groups
    assert published["categories"] == {"bank": "bank", "labour": POOLED, "shinkin": POOLED}
    # The pool of the small category took in the smallest category that could stand alone
    # (secondary suppression), and reaches K itself.
    assert groups[POOLED]["categories"] == ["labour", "shinkin"]
    assert groups[POOLED]["n"] == 7
    assert all(group["n"] >= K for group in groups.values())
    # The same subtraction leaves nobody over, and there is nothing additive to subtract.
    assert published["sector"]["n"] - sum(group["n"] for group in groups.values()) == 0
    for figures in [published["sector"], *groups.values()]:
        assert set(figures) == {"group", "categories", "n", "quantiles"}
    # The labour bank's value is in no published figure.
    published_values = {
        v for f in [published["sector"], *groups.values()] for v in f["quantiles"].values()
    }
    assert 37.3 not in published_values


@pytest.mark.parametrize(
    ("sizes", "alone", "pooled"),
    [
        # Two small categories that reach K together need nothing else.
        ({"bank": 8, "labour": 2, "credit": 3}, ["bank"], ["credit", "labour"]),
        # Below K together: the smallest category standing alone joins them, and the pool is
        # checked again (here one merge is enough; the tie between equal sizes goes by name).
        (
            {"bank": 8, "insurer": 6, "shinkin": 6, "labour": 1},
            ["bank", "shinkin"],
            ["insurer", "labour"],
        ),
        # Still below K after one merge: a second one.
        ({"bank": 5, "insurer": 5, "labour": 1}, ["insurer"], ["bank", "labour"]),
        # Every category small but the sector reaches K: one pooled group.
        ({"labour": 3, "credit": 3}, [], ["credit", "labour"]),
    ],
)
def test_small_categories_are_pooled_until_every_shown_group_reaches_k(sizes, alone, pooled):
    values = {f"{c}-{i}": 10.0 + i for c, n in sizes.items() for i in range(n)}
    category_of = {org: org.split("-")[0] for org in values}
    cohort = form_cohort(values, category_of, Q2)
    assert sorted(label for label in cohort.groups if label != POOLED) == alone
    assert list(cohort.covers[POOLED]) == pooled
    assert all(len(members) >= K for members in cohort.groups.values())
    assert cohort.sector == frozenset(values)  # nobody counted is left outside a shown group


# --------------------------------------------------------------------------------------------
# Attack 2: the same group on two consecutive days, one organisation's arrival or departure

OTHERS = {"s1": 12.0, "s2": 23.0, "s3": 31.0, "s4": 44.0, "s5": 58.0, "s6": 71.0}
BANKS = {f"b{i}": 50.0 + 4 * i for i in range(6)}


def scenario(change: str, x: float) -> tuple[dict, dict, dict, dict]:
    """(values, categories) of the quarter's first day, of day d and of day d + 1, when ``x``
    (the organisation whose value is the secret) joins, gets a value, leaves or loses its value
    between d and d + 1. Everybody else's value stays the same: the cleanest case for an
    attacker, who then attributes every change to x."""
    base = OTHERS | BANKS
    categories = {org: "bank" if org.startswith("b") else "shinkin" for org in base}
    with_x = (base | {"x": x}, categories | {"x": "shinkin"})
    no_value = (base | {"x": None}, categories | {"x": "shinkin"})
    without = (dict(base), dict(categories))
    return {
        "joins": (without, without, with_x),
        "gets a value": (no_value, no_value, with_x),
        "leaves": (with_x, with_x, without),
        "loses its value": (with_x, with_x, no_value),
    }[change]


CHANGES = ["joins", "gets a value", "leaves", "loses its value"]


def naive_difference(before: dict, after: dict) -> tuple[int, float]:
    """Members and their sum that one day has and the other not, from the shinkin figures."""
    n0, n1 = before["shinkin"]["n"], after["shinkin"]["n"]
    s0, s1 = n0 * before["shinkin"]["mean"], n1 * after["shinkin"]["mean"]
    return abs(n1 - n0), abs(s1 - s0)


@pytest.mark.parametrize("change", CHANGES)
def test_one_organisation_arriving_or_leaving_mid_quarter_reveals_nothing(change):
    first, day_d, day_d1 = scenario(change, SECRET)

    # Naive: the difference of the two days' totals is x's value.
    naive_d, naive_d1 = naive_figures(*day_d), naive_figures(*day_d1)
    assert naive_difference(naive_d, naive_d1) == (1, pytest.approx(SECRET, abs=1e-9))

    # Here: the second day publishes exactly what the first did.
    cohort = form_cohort(*first, Q2)
    seen_d = ours(*day_d, DAY, cohort, last_known=day_d[0])
    seen_d1 = ours(*day_d1, NEXT, cohort, last_known=day_d[0])
    assert seen_d1 == seen_d

    # Even an attacker who knows every other value learns from day d + 1 no more than from
    # day d; and when x arrives it learns nothing at all.
    def world(x: float) -> object:
        first, day_d, day_d1 = scenario(change, x)
        cohort = form_cohort(*first, Q2)
        return ours(*day_d1, NEXT, cohort, last_known=day_d[0])

    def world_d(x: float) -> object:
        first, day_d, _ = scenario(change, x)
        return ours(*day_d, DAY, form_cohort(*first, Q2), last_known=day_d[0])

    both = [x for x in CANDIDATES if world(x) == seen_d1 and world_d(x) == seen_d]
    assert both == consistent(CANDIDATES, world_d, seen_d)
    if change in ("joins", "gets a value"):
        assert both == CANDIDATES
    else:  # x counted all quarter long: the figures hold its grid cell at best, not its value
        assert max(both) - min(both) >= STEP


def test_exact_quartiles_alone_leak_an_arrival_to_an_attacker_who_knows_the_others():
    """Leaving out means is not enough: with the other values known, exact quartiles on the
    day x arrives pin it down; the module's figures do not move."""

    def naive_world(x: float) -> object:
        return naive_figures(*scenario("joins", x)[2])["shinkin"]["p25"]

    seen = naive_world(SECRET)
    assert consistent(CANDIDATES, naive_world, seen) == [SECRET]

    def world(x: float) -> object:
        first, _, day_d1 = scenario("joins", x)
        return ours(*day_d1, NEXT, form_cohort(*first, Q2))

    assert consistent(CANDIDATES, world, world(SECRET)) == CANDIDATES


@pytest.mark.parametrize("change", CHANGES)
def test_one_organisation_arriving_or_leaving_at_a_new_quarter_waits(change):
    last_of_q2, first_of_q3 = dt.date(2025, 6, 30), dt.date(2025, 7, 1)
    first, day_d, day_d1 = scenario(change, SECRET)
    q2 = form_cohort(*first, Q2)
    q3 = form_cohort(*day_d1, first_of_q3, previous=q2)

    assert q3.groups == q2.groups  # the change of one is held back
    seen_d = ours(*day_d, last_of_q2, q2, last_known=day_d[0])
    seen_d1 = ours(*day_d1, first_of_q3, q3, last_known=day_d[0])
    assert seen_d1 == seen_d


def test_a_batch_of_k_arrivals_at_a_new_quarter_is_taken_in():
    base = OTHERS | BANKS
    categories = {org: "bank" if org.startswith("b") else "shinkin" for org in base}
    q2 = form_cohort(base, categories, Q2)
    arrivals = {f"n{i}": 30.0 + i for i in range(K)}
    values = base | arrivals
    categories = categories | dict.fromkeys(arrivals, "shinkin")

    q3 = form_cohort(values, categories, dt.date(2025, 7, 1), previous=q2)
    assert q3.groups["shinkin"] == q2.groups["shinkin"] | frozenset(arrivals)
    assert q3.groups["bank"] == q2.groups["bank"]

    # One fewer waits, and so do its counterparts in the sector.
    fewer = dict(list(arrivals.items())[: K - 1])
    q3 = form_cohort(base | fewer, categories, dt.date(2025, 7, 1), previous=q2)
    assert q3.groups == q2.groups

    # ...and a quarter later, with one more, all K are taken in together.
    q4 = form_cohort(values, categories, dt.date(2025, 10, 1), previous=q3)
    assert q4.groups["shinkin"] == q2.groups["shinkin"] | frozenset(arrivals)


def test_a_category_does_not_leave_the_pool_with_fewer_than_k():
    # Q2: labour (3), coop (3) and credit (2) share the pool; bank stands alone.
    values = {f"bank-{i}": 50.0 for i in range(8)} | {f"labour-{i}": 40.0 for i in range(3)}
    values |= {f"coop-{i}": 35.0 for i in range(3)} | {f"credit-{i}": 30.0 for i in range(2)}
    categories = {org: org.split("-")[0] for org in values}
    q2 = form_cohort(values, categories, Q2)
    assert q2.covers[POOLED] == ("coop", "credit", "labour")

    # Q3: two labour banks arrive. From scratch labour would stand alone with 5 and the pool
    # keep 5; but the Q2 pool minus the Q3 pool would be the three labour banks of Q2. So
    # everything waits (the arrivals too: they would be a change of two to labour).
    arrivals = {"labour-3": 41.0, "labour-4": 42.0}
    values_q3 = values | arrivals
    categories_q3 = categories | dict.fromkeys(arrivals, "labour")
    q3_from_scratch = form_cohort(values_q3, categories_q3, dt.date(2025, 7, 1))
    assert sorted(q3_from_scratch.groups) == [POOLED, "bank", "labour"]
    q3 = form_cohort(values_q3, categories_q3, dt.date(2025, 7, 1), previous=q2)
    assert q3.groups == q2.groups
    assert q3.group_for_category("labour") == POOLED


def test_moves_between_groups_that_cancel_out_in_the_sector_hold_everything():
    # Each group changes by K, but the sector by two: one bank leaves, one shinkin arrives,
    # and four banks become shinkin (a change of category).
    values = {f"b{i}": 50.0 + i for i in range(10)} | {f"s{i}": 30.0 + i for i in range(6)}
    categories = {org: "bank" if org.startswith("b") else "shinkin" for org in values}
    q2 = form_cohort(values, categories, Q2)
    moved = {f"b{i}": "shinkin" for i in range(6, 10)}
    values_q3 = {org: v for org, v in values.items() if org != "b5"} | {"s6": 36.0}
    categories_q3 = {org: c for org, c in categories.items() if org != "b5"} | moved
    categories_q3["s6"] = "shinkin"
    q3 = form_cohort(values_q3, categories_q3, dt.date(2025, 7, 1), previous=q2)
    assert q3.groups == q2.groups


# --------------------------------------------------------------------------------------------
# Attack 3: a member's own position and the group's figures, day after day

PEERS = {"p1": 20.0, "p2": 40.0, "p4": 75.0, "p5": 90.0}
# Two worlds that differ only in peer p3's value (the secret), both in the same grid cell.
WORLD_A, WORLD_B = 58.4, 61.6


def shinkin(v: float, p3: float) -> tuple[dict, dict]:
    values = PEERS | {"p3": p3, "a": v}
    return values, dict.fromkeys(values, "shinkin")


def test_a_member_reads_a_peers_value_from_its_band_and_the_median_naively():
    # One day: the attacker at 50 sees it is below the median of six, so it is the third; the
    # median is the mean of the third and the fourth: the fourth is the secret.
    values, categories = shinkin(50.0, WORLD_A)
    figures = naive_figures(values, categories)["shinkin"]
    assert naive_percentile(values, "a") < 50
    assert 2 * figures["p50"] - 50.0 == pytest.approx(WORLD_A, abs=1e-9)

    # Day after day: moving its own value, it watches its band flip as it passes the peer.
    def decile(v: float) -> int:
        return int(naive_percentile(shinkin(v, WORLD_A)[0], "a") // 10)

    low, high = 40.0, 75.0
    assert decile(low + 1e-9) != decile(high - 1e-9)
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if decile(middle) == decile(low + 1e-9) else (low, middle)
    assert high - low < 1e-9
    assert low == pytest.approx(WORLD_A, abs=1e-9)


def test_a_member_moving_its_own_value_cannot_tell_a_peers_value_within_its_cell():
    assert snap(WORLD_A, STEP) == snap(WORLD_B, STEP)
    cohort = form_cohort(*shinkin(50.0, WORLD_A), Q2)
    assert cohort == form_cohort(*shinkin(50.0, WORLD_B), Q2)

    def seen(v: float, p3: float) -> tuple:
        values, categories = shinkin(v, p3)
        return (
            ours(values, categories, DAY, cohort),
            position(values, categories, "a", "higher", DAY, cohort, step=STEP),
        )

    # Every own value the attacker could choose, one a day: what it sees never differs between
    # the two worlds, so whatever it computes is the same in both and wrong in one of them by
    # at least their difference.
    probes = [round(i * 0.05, 2) for i in range(2001)]
    assert all(seen(v, WORLD_A) == seen(v, WORLD_B) for v in probes)

    # The one-day attack above now gives the cell's grid point, neither world's value.
    figures, own = seen(50.0, WORLD_A)
    assert own.high <= 50  # it still learns it is in the lower half
    estimate = 2 * figures["groups"]["shinkin"]["quantiles"]["50"] - 50.0
    assert min(abs(estimate - WORLD_A), abs(estimate - WORLD_B)) > 1


# --------------------------------------------------------------------------------------------
# k >= 5, directions, ties, missing values


@pytest.mark.parametrize("n", [4, 5])
def test_a_group_is_shown_from_five_organisations_with_a_value(n):
    values = {f"o{i}": 10.0 * i for i in range(n)} | {"none": None}
    categories = dict.fromkeys(values, "shinkin")
    cohort = form_cohort(values, categories, Q2)
    published = publish(values, categories, "higher", DAY, cohort, step=STEP)
    positions = [position(values, categories, o, "higher", DAY, cohort) for o in values]
    if n < K:
        assert cohort.groups == {}
        assert published["sector"] is None
        assert published["groups"] == {}
        assert published["categories"] == {"shinkin": None}
        assert positions == [None] * len(values)
    else:
        assert published["groups"]["shinkin"]["n"] == 5
        assert published["sector"]["n"] == 5
        assert all(p is not None for p in positions[:-1])
        assert positions[-1] is None  # no value today, no position


def test_a_category_of_four_is_never_shown_as_itself():
    values = {f"bank-{i}": 50.0 + i for i in range(8)} | {f"labour-{i}": 20.0 + i for i in range(4)}
    categories = {org: org.split("-")[0] for org in values}
    cohort = form_cohort(values, categories, Q2)
    published = publish(values, categories, "higher", DAY, cohort, step=STEP)
    assert "labour" not in published["groups"]
    # Its organisations are placed in the pool (here with the banks, the smallest that stands
    # alone), labelled as such: never a "labour" percentile.
    assert position(values, categories, "labour-0", "higher", DAY, cohort).group == POOLED


def test_direction_higher_percentiles_are_better():
    values = {f"o{i}": 10.0 * i for i in range(1, 10)}
    categories = dict.fromkeys(values, "bank")
    cohort = form_cohort(values, categories, Q2)

    def band(org: str, better: str) -> tuple[int, int]:
        p = position(values, categories, org, better, DAY, cohort, step=STEP)
        return p.low, p.high

    assert band("o9", "higher") == (75, 100)
    assert band("o1", "higher") == (0, 25)
    assert band("o9", "lower") == (0, 25)
    assert band("o1", "lower") == (75, 100)
    assert band("o5", "higher") == band("o5", "lower") == (50, 50)  # at the median
    assert band("o4", "higher") == (25, 50)
    assert band("o4", "lower") == (50, 75)
    with pytest.raises(ValueError, match="better"):
        position(values, categories, "o1", "more", DAY, cohort)


def test_ties_share_one_position_in_the_middle():
    same = dict.fromkeys([f"o{i}" for i in range(9)], 80.0)
    categories = dict.fromkeys(same, "bank")
    cohort = form_cohort(same, categories, Q2)
    for better in ("higher", "lower"):
        found = {position(same, categories, o, better, DAY, cohort, step=STEP) for o in same}
        assert {(p.low, p.high) for p in found} == {(25, 75)}  # neither top nor bottom

    # Two organisations with the same value, and one in the median's cell, are treated alike.
    values = {f"o{i}": v for i, v in enumerate([10, 20, 30, 40, 52, 60, 70, 80, 80])}
    categories = dict.fromkeys(values, "bank")
    cohort = form_cohort(values, categories, Q2)
    place = {o: position(values, categories, o, "higher", DAY, cohort, step=STEP) for o in values}
    assert (place["o7"].low, place["o7"].high) == (place["o8"].low, place["o8"].high) == (75, 100)
    assert (place["o4"].low, place["o4"].high) == (50, 50)  # 52 is in the median's cell


def test_missing_values():
    values = {f"o{i}": 10.0 * i for i in range(1, 8)} | {"late": None, "nan": math.nan}
    categories = dict.fromkeys(values, "bank") | {"other-0": "insurer"}
    values |= {f"i{i}": 30.0 + i for i in range(5)}
    categories |= {f"i{i}": "insurer" for i in range(5)}
    cohort = form_cohort(values, categories, Q2)
    # No value (None or not a number) on the first day: not counted this quarter.
    assert cohort.groups["bank"] == frozenset(f"o{i}" for i in range(1, 8))
    # No value today: no position.
    assert position(values, categories, "late", "higher", DAY, cohort) is None
    assert position(values, categories, "nan", "higher", DAY, cohort) is None

    # A member without a value today and no last known one withholds its group and the sector,
    # rather than letting them be recomputed without it; other groups are shown.
    today = values | {"o3": None}
    stats = group_statistics(today, cohort, DAY, step=STEP)
    assert stats["bank"] is None
    assert stats[SECTOR] is None
    assert stats["insurer"] is not None
    # With its last known value it counts as if unchanged.
    stats = group_statistics(today, cohort, DAY, last_known={"o3": 30.0}, step=STEP)
    assert stats == group_statistics(values, cohort, DAY, step=STEP)


def test_an_organisation_not_counted_yet_is_placed_without_moving_the_figures():
    values = {f"o{i}": 10.0 * i for i in range(1, 10)}
    categories = dict.fromkeys(values, "bank")
    cohort = form_cohort(values, categories, Q2)
    later = values | {"new": 95.0}
    later_categories = categories | {"new": "bank"}
    place = position(later, later_categories, "new", "higher", DAY, cohort, step=STEP)
    assert (place.group, place.n, place.low, place.high, place.counted) == (
        "bank",
        9,
        75,
        100,
        False,
    )
    assert ours(later, later_categories, DAY, cohort) == ours(values, categories, DAY, cohort)


@pytest.mark.parametrize(
    ("n", "published"),
    [(5, [50]), (8, [50]), (9, [25, 50, 75]), (20, [25, 50, 75]), (21, [10, 25, 50, 75, 90])],
)
def test_each_quantile_needs_two_members_beyond_it_on_each_side(n, published):
    values = {f"o{i}": float(i) for i in range(n)}
    categories = dict.fromkeys(values, "bank")
    cohort = form_cohort(values, categories, Q2)
    stats = group_statistics(values, cohort, DAY, step=1.0)["bank"]
    assert sorted(stats.quantiles) == published


def test_the_grid():
    assert snap(87.3, 5) == 85.0
    assert snap(87.5, 5) == 90.0  # half up
    assert snap(0.873, 0.05) == 0.85
    # Without a step: two significant figures in steps of five, at every scale.
    assert [snap(v) for v in (87.3, 0.873, 873, 9.8, 0, -3.4)] == [85, 0.85, 850, 10, 0, -3.5]
    with pytest.raises(ValueError, match="step"):
        snap(1.0, 0)
    # Values in the same cell give the same figures: the grid applies to the inputs.
    a = {f"o{i}": 10.0 * i + 1.0 for i in range(1, 10)}
    b = {f"o{i}": 10.0 * i - 1.0 for i in range(1, 10)}
    categories = dict.fromkeys(a, "bank")
    cohort = form_cohort(a, categories, Q2)
    assert ours(a, categories, DAY, cohort) == ours(b, categories, DAY, cohort)


def test_publication_is_json_names_nobody_and_the_cohort_round_trips():
    values = {f"bank-{i}": 50.0 + i for i in range(8)} | {f"labour-{i}": 20.0 for i in range(2)}
    categories = {org: org.split("-")[0] for org in values}
    cohort = form_cohort(values, categories, Q2)
    text = json.dumps(publish(values, categories, "lower", DAY, cohort, step=STEP))
    assert not any(org in text for org in values)
    assert Cohort.from_dict(json.loads(json.dumps(cohort.to_dict()))) == cohort
    assert (quarter_of(DAY), quarter_start(DAY)) == ("2025-Q2", Q2)


def test_misuse_is_refused():
    values = {f"o{i}": float(i) for i in range(6)}
    categories = dict.fromkeys(values, "bank")
    cohort = form_cohort(values, categories, Q2)
    with pytest.raises(ValueError, match="quarter"):
        publish(values, categories, "higher", dt.date(2025, 7, 1), cohort)
    with pytest.raises(ValueError, match="must follow"):
        form_cohort(values, categories, DAY, previous=cohort)
    with pytest.raises(ValueError, match="reserved"):
        form_cohort(values, dict.fromkeys(values, POOLED), Q2)


# --------------------------------------------------------------------------------------------
# Properties over random sectors


@st.composite
def sectors(draw):
    n = draw(st.integers(min_value=0, max_value=40))
    values = {
        f"o{i}": draw(st.one_of(st.none(), st.floats(0, 100, allow_nan=False))) for i in range(n)
    }
    categories = {
        org: draw(st.sampled_from(["bank", "shinkin", "credit", "insurer", "securities", "it"]))
        for org in values
    }
    return values, categories


@settings(max_examples=150, deadline=None)
@given(sectors(), st.data())
def test_no_single_change_within_a_quarter_moves_any_figure(sector, data):
    values, categories = sector
    cohort = form_cohort(values, categories, Q2)
    before = ours(values, categories, DAY, cohort, last_known=values)

    # The figures' shape: every group shown reaches K, they add up to the sector, and the
    # quantiles are grid points in order.
    shown = {g: s for g, s in before["groups"].items() if s is not None}
    assert all(s["n"] >= K for s in shown.values())
    if before["sector"] is not None:
        assert before["sector"]["n"] == sum(s["n"] for s in shown.values())
    for figures in [before["sector"], *shown.values()]:
        if figures is not None:
            cuts = list(figures["quantiles"].values())
            assert cuts == sorted(cuts)
            assert all(snap(c, STEP) == c for c in cuts)

    # One organisation arrives (or gets a value), or leaves (or loses it): nothing moves.
    org = data.draw(st.sampled_from([*values, "newcomer"]))
    changed_values, changed_categories = dict(values), dict(categories)
    if values.get(org) is None:
        changed_values[org] = data.draw(st.floats(0, 100, allow_nan=False))
        changed_categories[org] = data.draw(st.sampled_from(["bank", "shinkin", "labour"]))
    elif data.draw(st.booleans()):
        changed_values[org] = None
    else:
        del changed_values[org], changed_categories[org]
    after = ours(changed_values, changed_categories, NEXT, cohort, last_known=values)
    assert after["sector"] == before["sector"]
    assert after["groups"] == before["groups"]
