"""The head-to-head schedule (:func:`arena_env.evaluation.tournament.balanced_schedule`): passes over
every combination; with two agents per match a round robin, so every prefix is balanced; seats
balanced; a longer schedule starts with the shorter one.  Counted from the schedule itself, for
every number of agents a tournament may have."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path

import pytest

from arena_env.evaluation import tournament
from arena_env.evaluation.tournament import AgentSpec, TournamentConfig, balanced_schedule

ROOT = Path(__file__).resolve().parents[1]


def labels(n):
    return tuple(f"agent{i}" for i in range(n))


class Tally:
    """Running counts of a schedule: plays per agent, meetings per pair, seats per agent."""

    def __init__(self, names, k):
        self.plays = Counter(dict.fromkeys(names, 0))
        self.pairs = Counter(dict.fromkeys(itertools.combinations(sorted(names), 2), 0))
        self.seats = {a: [0] * k for a in names}
        self.combos = Counter(dict.fromkeys(itertools.combinations(sorted(names), k), 0))

    def add(self, match):
        for seat, a in enumerate(match):
            self.plays[a] += 1
            self.seats[a][seat] += 1
        for p in itertools.combinations(sorted(match), 2):
            self.pairs[p] += 1
        self.combos[tuple(sorted(match))] += 1

    @staticmethod
    def spread(counts):
        return max(counts) - min(counts)


@pytest.mark.parametrize("n", range(2, 11))
def test_two_agents_per_match_every_prefix_is_balanced(n):
    names = labels(n)
    per_pass = math.comb(n, 2)
    passes = 4
    sched = balanced_schedule(names, 2, passes * per_pass)
    assert len(sched) == passes * per_pass
    t = Tally(names, 2)
    for i, m in enumerate(sched, 1):
        assert len(m) == 2 and m[0] != m[1] and set(m) <= set(names)
        t.add(m)
        assert t.spread(t.plays.values()) <= 1, (n, i, t.plays)  # plays differ by at most one
        assert t.spread(t.pairs.values()) <= 1, (n, i, t.pairs)  # and so do pair meetings
        if i % per_pass == 0:  # a full pass: every pair met equally often
            assert set(t.pairs.values()) == {i // per_pass}, (n, i)
        if i % (2 * per_pass) == 0:  # two full passes: every agent sat equally often in both seats
            assert all(s[0] == s[1] for s in t.seats.values()), (n, i, t.seats)


@pytest.mark.parametrize("n", range(2, 11))
def test_a_prefix_of_a_longer_schedule_is_the_shorter_schedule(n):
    names = labels(n)
    longest = balanced_schedule(names, 2, 3 * math.comb(n, 2) + 1)
    for m in range(len(longest) + 1):
        assert balanced_schedule.__wrapped__(names, 2, m) == longest[:m], (n, m)  # uncached: computed afresh


def test_odd_passes_swap_the_first_pass_seats():
    names = labels(5)
    per_pass = math.comb(5, 2)
    sched = balanced_schedule(names, 2, 3 * per_pass)
    first, second, third = (set(sched[i * per_pass:(i + 1) * per_pass]) for i in range(3))
    assert second == {m[::-1] for m in first} and third == first


def test_shipped_tournament_totals():
    cfg = tournament.load_config(ROOT / "configs" / "tournament.yaml")
    assert (len(cfg.agents), cfg.agents_per_match, cfg.matches_per_seed, cfg.seeds) == (11, 2, 11, 10)
    matches = [m for i in range(cfg.seeds) for m in cfg.matches(i)]
    assert len(matches) == 110 and all(len(cfg.matches(i)) == 11 for i in range(cfg.seeds))
    assert matches == list(balanced_schedule(tuple(a.label for a in cfg.agents), 2, 110))
    t = Tally([a.label for a in cfg.agents], 2)
    for m in matches:
        t.add(m)
    assert set(t.plays.values()) == {20}  # every agent plays equally often
    assert set(t.pairs.values()) == {2} and len(t.pairs) == 55  # two whole passes: every pair meets twice
    assert all(Tally.spread(s) == 0 for s in t.seats.values()), t.seats  # docs/evaluation.md quotes this
    assert len(set(matches)) == 110  # the second pass swaps the seats of the first


def test_more_seeds_keep_the_earlier_seeds_matches():
    specs = tuple(AgentSpec(x, "hold") for x in "abcdefg")
    few = TournamentConfig(specs, ("tiny",), 3, tracks=("head-to-head",), matches_per_seed=5)
    more = TournamentConfig(specs, ("tiny",), 9, tracks=("head-to-head",), matches_per_seed=5)
    assert [few.matches(i) for i in range(3)] == [more.matches(i) for i in range(3)]
    assert few.cells() == more.cells()[:len(few.cells())]


@pytest.mark.parametrize("n, k", [(3, 3), (4, 3), (5, 3), (6, 3), (4, 4), (5, 4), (6, 4)])
def test_three_and_four_agents_per_match_every_pass_plays_every_combination(n, k):
    names = labels(n)
    per_pass = math.comb(n, k)
    passes = 3
    sched = balanced_schedule(names, k, passes * per_pass)
    t = Tally(names, k)
    for i, m in enumerate(sched, 1):
        assert len(set(m)) == k and set(m) <= set(names)
        t.add(m)
        assert t.spread(t.plays.values()) <= 1, (n, k, i, t.plays)  # plays stay within one match
        if i % per_pass == 0:
            assert set(t.combos.values()) == {i // per_pass}, (n, k, i)  # every combination equally often
            assert set(t.plays.values()) == {i // per_pass * math.comb(n - 1, k - 1)}
            # seats "about equally often": measured, every agent's seat counts within one at every pass end
            assert all(t.spread(s) <= 1 for s in t.seats.values()), (n, k, i, t.seats)


def test_a_tournament_config_splits_the_schedule_into_seeds():
    specs = tuple(AgentSpec(x, "hold") for x in "abcde")
    cfg = TournamentConfig(specs, ("tiny",), 7, tracks=("head-to-head",), matches_per_seed=3)
    sched = balanced_schedule(tuple("abcde"), 2, 21)
    assert [m for i in range(7) for m in cfg.matches(i)] == list(sched)
    every = TournamentConfig(specs, ("tiny",), 2, tracks=("head-to-head",))  # null: every combination per seed
    assert [len(every.matches(i)) for i in range(2)] == [10, 10]
    assert sorted(map(sorted, every.matches(1))) == sorted(map(list, itertools.combinations("abcde", 2)))
