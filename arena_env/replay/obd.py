"""The Open Bandit Dataset (OBD): its CSV files as canonical event logs, and its Thompson-sampling logger.

The Open Bandit Dataset (Saito, Aihara, Matsutani, Narita, "Open Bandit Dataset and Pipeline: Towards
Realistic and Reproducible Off-Policy Evaluation", NeurIPS 2021 Datasets and Benchmarks track; data by
ZOZO Research, CC BY 4.0, https://research.zozo.com/data.html) logs a fashion e-commerce site's
recommendation widget (ZOZOTOWN, 2019-11-24 to 2019-11-30), which shows three items at a time, under
two behaviour policies (``random``: uniform at random; ``bts``: Bernoulli Thompson sampling) and three
campaigns (``all``: 80 items, ``men``: 34, ``women``: 46).  A small sample (10,000 rows per policy and
campaign) ships in the sdist of ``obp`` 0.5.7 at ``obp/dataset/obd/<policy>/<campaign>/<campaign>.csv``.
Read the CSVs; do not install obp (it caps Python below 3.11).

**Input: one CSV row = one impression = one round at one position**

===========================  ===============================  =================================================
OBD column                   values                           becomes
===========================  ===============================  =================================================
(unnamed, first)             0, 1, ... (the row index)        the case id ``"<policy>/<campaign>/<index>"``
``timestamp``                ``2019-11-24 00:00:34.762830``   ``timestamp`` of both events (UTC; the files write
                             ``+00:00``                       ``+00:00``, a timestamp without offset is read as
                                                              UTC)
``item_id``                  0 .. n_items - 1                 ``action`` = ``str(item_id)``
``position``                 1, 2, 3 (slot from the top)      attribute ``position`` = position - 1 (0, 1, 2)
``click``                    0 or 1                           ``outcome`` = ``click`` or ``no_click``
``propensity_score``         (0, 1]                           ``propensity``
``user_feature_0..3``        hashed categories (strings)      attributes ``user_feature_0..3`` (strings)
``user-item_affinity_k``     floats, k = 0 .. n_items - 1     attributes ``affinity_k`` (floats)
===========================  ===============================  =================================================

Any other column, a missing one, an empty cell, a value out of range (``position`` not 1-3, ``item_id``
outside the campaign's items, ``click`` not 0/1, ``propensity_score`` outside (0, 1]) or a repeated
index raises :class:`OBDError` naming the file, the column and (for values) the row and line.

**Output: two events per row** (:func:`read_obd`), in the canonical schema (:mod:`.schema`):

* ``decision.executed`` (``seq`` 0): the logged item and its propensity, with the row's attributes
  ``position``, ``behavior_policy``, ``user_feature_*`` and ``affinity_*``;
* ``outcome.recorded`` (``seq`` 1, same timestamp): ``click`` or ``no_click``, and no attributes.

Event ids are ``"<case id>/decision"`` and ``"<case id>/outcome"``.  The click is in the outcome event
only, so no snapshot can see it.  The manifest (:func:`obd_manifest`) has one decision point,
``recommend`` at each ``decision.executed`` with ``position_field: position``; the allowed actions are
the campaign's item ids ``"0" .. str(n_items - 1)``; outcomes ``positive: [click]``,
``negative: [no_click]``; the features are ``position``, the user features and the affinities.  Prepared
for replay (:func:`arena_env.replay.snapshots.prepare`), decision row ``k`` of a time-sorted CSV has
``logged == item_id``, ``pscore == propensity_score``, ``reward == click`` and ``position == position - 1``
of CSV row ``k`` (obp's ``obtain_batch_bandit_feedback`` calls them ``action``, ``pscore``, ``reward`` and
``position``).  The mean of ``click`` over a log is its behaviour policy's value (the on-policy value).

**The behaviour policies' propensities** (what the sdist's files show; :func:`bts_action_dist`):

* ``random``: every ``propensity_score`` is exactly ``1 / n_items`` (0.0125 for ``all``): the marginal
  probability of an item at a position when three distinct items are drawn uniformly.
* ``bts``: ``propensity_score`` is the probability of the logged item *at the logged position* under the
  production Thompson sampler at that moment, computed by Monte Carlo: all but 5 of the 30,000 values
  are multiples of 5e-6 (frequencies over 200,000 draws, presumably); the exceptions are ``1 / n_items``
  (once in ``men``, three times in ``women``) and one 1e-06 in ``women``.  The uniform policy's weights
  ``1 / (n_items * propensity_score)`` have mean 0.88 to 1.19 per position and campaign, about 1 as they
  should (``women`` position 2: 7.4, all of it that one 1e-06 row; 0.95 without it).  The production
  sampler updated its posterior as traffic came in, so the propensity of one (item, position) changes
  over the week (item 51 at position 2 of ``bts/all`` is logged with values from 0.015 to 0.46).
  obp ships the Beta prior the sampler started the week with (``obp/policy/conf/prior_bts.yaml``; here
  :data:`BTS_PRIOR`): :func:`bts_action_dist` of that prior predicts the logged propensities of the first
  hour of the week (median relative error 0.11 to 0.20 by campaign, rank correlation 0.92 to 0.95; with
  the positions reversed, or position ignored, the error is larger in every campaign) and not those after
  the first day (median relative error 0.9 to 1.9, rank correlation 0.26 to 0.57).  It is the logger's
  starting state: use the logged ``propensity_score`` for off-policy estimates, and
  :func:`bts_action_dist` as obp's ``BernoulliTS(is_zozotown_prior=True)`` evaluation policy.

The ``bts_action_dist`` Monte Carlo is obp's ``BernoulliTS.compute_batch_action_dist`` (obp 0.5.7,
``obp/policy/contextfree.py``, Apache-2.0): with no data, draw ``theta_i ~ Beta(alpha_i, beta_i)`` for
every item, rank the items by ``theta`` (``argsort()[::-1]``), and count item ``i`` at position ``p``
when it is ranked ``p``-th, ``p < len_list``; divide by ``n_sim``.  Each column (position) is then a
probability distribution over the items.  The draws come from ``np.random.default_rng(seed)``, n_sim
draws of all items in turn (the same stream as a loop of ``rng.beta(alpha, beta)``), so a seed fixes
the result exactly; obp's ``RandomState`` stream differs, its distribution does not.

Entry points: :func:`read_obd` (a table and a manifest mapping), :func:`write_obd_log` (``events.parquet``
and ``manifest.yaml``, which :func:`arena_env.replay.log.load_log` reads back), and the command line
``python -m arena_env.replay.obd SRC OUT [--behavior-policy bts] [--campaign all]``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .log import LogError, TimestampError, iso_timestamps

CAMPAIGNS: dict[str, int] = {"all": 80, "men": 34, "women": 46}
"""The OBD campaigns and their numbers of items."""
BEHAVIOR_POLICIES: tuple[str, ...] = ("random", "bts")
LEN_LIST = 3
"""Slots of the recommendation widget (OBD positions 1-3)."""
N_USER_FEATURES = 4
AFFINITY = "user-item_affinity_"
"""The prefix of OBD's user-item affinity columns (renamed ``affinity_<k>``)."""
INDEX = ""
"""pyarrow's name of the CSV's unnamed first column (the row index)."""
_AFFINITY_K = re.compile(r"^user-item_affinity_(\d+)$")
_TIMESTAMP = r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d(:?\d\d)?)?$"
_CHUNK = 10_000  # Monte Carlo draws per block (memory: _CHUNK x n_items doubles)

BTS_PRIOR: dict[str, dict[str, tuple[int, ...]]] = {
    "all": {
        "alpha": (47, 8, 62, 142, 3, 14, 7, 857, 12, 15, 6, 100, 48, 23, 71, 61, 13, 16, 518, 30, 7, 4, 23, 8, 10, 11,
                  11, 18, 121, 11, 11, 10, 14, 9, 204, 58, 3, 19, 42, 1013, 2, 328, 15, 31, 14, 138, 45, 55, 23, 38,
                  10, 401, 52, 6, 3, 6, 5, 32, 35, 133, 52, 820, 43, 195, 8, 42, 40, 4, 32, 30, 9, 22, 6, 23, 5, 54,
                  8, 22, 65, 246),
        "beta": (12198, 3566, 15993, 35522, 2367, 4609, 3171, 181745, 4372, 4951, 3100, 24665, 13210, 7061, 18061,
                 17449, 5644, 6787, 111326, 8776, 3334, 2271, 7389, 2659, 3665, 4724, 3561, 5085, 27407, 4601, 4756,
                 4120, 4736, 3788, 45292, 14719, 2189, 5589, 11995, 222255, 2308, 70034, 4801, 8274, 5421, 31912,
                 12213, 13576, 6230, 10382, 4141, 85731, 12811, 2707, 2250, 2668, 2886, 9581, 9465, 28336, 12062,
                 162793, 12107, 41240, 3162, 11604, 10818, 2923, 8897, 8654, 4000, 6580, 3174, 6766, 2602, 14506,
                 3968, 7523, 16532, 51964),
    },
    "men": {
        "alpha": (47, 8, 62, 142, 3, 6, 100, 48, 23, 71, 61, 13, 16, 518, 30, 7, 4, 23, 8, 10, 11, 11, 18, 121, 11, 4,
                  32, 30, 9, 22, 6, 23, 5, 54),
        "beta": (12198, 3566, 15993, 35522, 2367, 3100, 24665, 13210, 7061, 18061, 17449, 5644, 6787, 111326, 8776,
                 3334, 2271, 7389, 2659, 3665, 4724, 3561, 5085, 27407, 4601, 2923, 8897, 8654, 4000, 6580, 3174,
                 6766, 2602, 14506),
    },
    "women": {
        "alpha": (12, 7, 984, 13, 15, 15, 11, 14, 9, 200, 72, 3, 14, 49, 1278, 3, 325, 14, 27, 14, 169, 48, 47, 18,
                  40, 12, 447, 46, 5, 3, 5, 7, 35, 34, 99, 30, 880, 51, 182, 6, 45, 39, 10, 24, 72, 229),
        "beta": (3612, 3173, 204484, 4517, 4765, 5331, 4131, 4728, 4028, 44280, 17918, 2309, 4339, 12922, 270771,
                 2480, 68475, 5129, 7367, 5819, 38026, 13047, 11604, 5394, 10912, 4439, 94485, 10700, 2679, 2319,
                 2578, 3288, 9566, 9775, 20120, 7317, 172026, 13673, 37329, 3365, 10911, 10734, 4278, 7574, 16826,
                 47462),
    },
}
"""The Beta prior (alpha, beta per item id) of the ZOZOTOWN Bernoulli Thompson sampler at the start of the
data collection, per campaign: obp 0.5.7 ``obp/policy/conf/prior_bts.yaml`` (Apache-2.0, Copyright ZOZO
Technologies, Inc.; used by ``BernoulliTS(is_zozotown_prior=True)``), transcribed as integers (every value
there is a whole number; ``tests/data/obd/prior_bts.yaml`` is the original file, and a test compares them)."""


class OBDError(LogError):
    """An OBD file that cannot be read as the dataset's format; the message names the file, column and row."""


# ------------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------------

def _locate(source: str | Any, behavior_policy: str | None, campaign: str | None) -> tuple[Path, str, str]:
    """The CSV file, the behaviour policy and the campaign (given, or read from ``<policy>/<campaign>/``)."""
    path = Path(source)
    if path.is_dir():
        nested = path / str(behavior_policy) / str(campaign) / f"{campaign}.csv"
        if behavior_policy is not None and campaign is not None and nested.is_file():
            path = nested
        else:
            csvs = sorted(p for p in path.glob("*.csv") if p.name != "item_context.csv")
            if len(csvs) != 1:
                raise OBDError(f"{path}: a directory must hold one OBD CSV besides item_context.csv (found "
                               f"{len(csvs)}), or be the dataset's root with <policy>/<campaign>/<campaign>.csv "
                               "and behavior_policy and campaign given")
            path = csvs[0]
    if not path.is_file():
        raise OBDError(f"{path}: no such file")
    seen_campaign = next((c for c in (path.parent.name, path.stem) if c in CAMPAIGNS), None)
    seen_policy = path.parent.parent.name if path.parent.parent.name in BEHAVIOR_POLICIES else None
    for what, given, seen, choices in (("behavior_policy", behavior_policy, seen_policy, BEHAVIOR_POLICIES),
                                       ("campaign", campaign, seen_campaign, tuple(CAMPAIGNS))):
        if given is None and seen is None:
            raise OBDError(f"{path}: cannot tell the {what} from the path (the dataset's layout is "
                           f"<policy>/<campaign>/<campaign>.csv); pass {what}= one of {', '.join(choices)} "
                           f"(replay.{what} in a replay config)")
        if given is not None and given not in choices:
            raise OBDError(f"{path}: unknown {what} {given!r}; the dataset has {', '.join(choices)}")
        if given is not None and seen is not None and given != seen:
            raise OBDError(f"{path}: the path says {what} {seen!r} but {what}={given!r} was passed; "
                           "pass the right one (or move the file)")
    return path, behavior_policy or seen_policy, campaign or seen_campaign


def _expected_columns(n_items: int) -> list[str]:
    return [INDEX, "timestamp", "item_id", "position", "click", "propensity_score",
            *[f"user_feature_{j}" for j in range(N_USER_FEATURES)], *[f"{AFFINITY}{k}" for k in range(n_items)]]


def _column_types(n_items: int) -> dict:
    import pyarrow as pa

    return {INDEX: pa.int64(), "timestamp": pa.string(), "item_id": pa.int64(), "position": pa.int64(),
            "click": pa.int64(), "propensity_score": pa.float64(),
            **{f"user_feature_{j}": pa.string() for j in range(N_USER_FEATURES)},
            **{f"{AFFINITY}{k}": pa.float64() for k in range(n_items)}}


def _bad_number(path: Path, n_items: int) -> OBDError:
    """The first cell that is not a number where one is expected (error path only: re-reads as text)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    text = pcsv.read_csv(str(path), convert_options=pcsv.ConvertOptions(
        column_types={c: pa.string() for c in _column_types(n_items)}))
    patterns = {pa.int64(): r"^\s*[+-]?\d+\s*$",
                pa.float64(): r"^\s*([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|NaN|inf|Inf))\s*$"}
    for name, typ in _column_types(n_items).items():
        if typ not in patterns or name not in text.column_names:
            continue
        col = text.column(name)
        bad = np.asarray(pc.invert(pc.match_substring_regex(col, patterns[typ])).fill_null(False))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            return OBDError(f"{path}: row {i + 1} (line {i + 2}): column {name!r}: {col[i].as_py()!r} is not "
                            f"{'a whole number' if typ == pa.int64() else 'a number'}")
    return OBDError(f"{path}: cannot read it as an OBD CSV")


def _read_csv(path: Path, campaign: str):
    import pyarrow as pa
    import pyarrow.csv as pcsv

    n_items = CAMPAIGNS[campaign]
    try:
        table = pcsv.read_csv(str(path), convert_options=pcsv.ConvertOptions(column_types=_column_types(n_items),
                                                                             strings_can_be_null=True))
    except pa.ArrowInvalid as exc:
        if "conversion error" in str(exc):
            raise _bad_number(path, n_items) from None
        raise OBDError(f"{path}: cannot read it as CSV: {exc}") from None
    names = table.column_names
    affinities = sorted(int(m.group(1)) for m in map(_AFFINITY_K.match, names) if m)
    other = [c for c, k in CAMPAIGNS.items() if k == len(affinities) and k != n_items]
    if other and affinities == list(range(len(affinities))):
        raise OBDError(f"{path}: {len(affinities)} columns {AFFINITY}<k>, but campaign {campaign!r} has {n_items} "
                       f"items ({AFFINITY}0 .. {AFFINITY}{n_items - 1}); is it the {other[0]!r} campaign?")
    expected = _expected_columns(n_items)
    missing = [c for c in expected if c not in names and c != INDEX]
    if missing:
        raise OBDError(f"{path}: missing column {missing[0]!r}"
                       + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                       + f"; an OBD file has the columns (index), timestamp, item_id, position, click, "
                         f"propensity_score, user_feature_0..{N_USER_FEATURES - 1}, {AFFINITY}0..{n_items - 1}")
    extra = [c for c in names if c not in expected]
    if extra:
        raise OBDError(f"{path}: unexpected column {extra[0]!r}; an OBD file of campaign {campaign!r} has only "
                       f"the columns (index), timestamp, item_id, position, click, propensity_score, "
                       f"user_feature_0..{N_USER_FEATURES - 1}, {AFFINITY}0..{n_items - 1}")
    return table


def _check_values(table, path: Path, n_items: int) -> None:
    import pyarrow.compute as pc

    def fail(mask: np.ndarray, column: str, what: str) -> None:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            value = table.column(column)[i].as_py()
            raise OBDError(f"{path}: row {i + 1} (line {i + 2}): column {column!r}: {value!r} {what}")

    for name in table.column_names:
        null = np.asarray(pc.is_null(table.column(name)))
        if null.any():
            i = int(np.flatnonzero(null)[0])
            raise OBDError(f"{path}: row {i + 1} (line {i + 2}): column {name!r} is empty; every OBD cell has a value")
    item = table.column("item_id").to_numpy()
    fail((item < 0) | (item >= n_items), "item_id", f"is not an item id of the campaign (0 .. {n_items - 1})")
    pos = table.column("position").to_numpy()
    fail((pos < 1) | (pos > LEN_LIST), "position", f"is not a position (1 .. {LEN_LIST})")
    click = table.column("click").to_numpy()
    fail((click != 0) & (click != 1), "click", "is not 0 or 1")
    ps = table.column("propensity_score").to_numpy()
    fail(~((ps > 0) & (ps <= 1)), "propensity_score", "is outside (0, 1]")
    for k in range(n_items):
        fail(~np.isfinite(table.column(f"{AFFINITY}{k}").to_numpy()), f"{AFFINITY}{k}", "is not a finite number")
    if INDEX in table.column_names:
        idx = table.column(INDEX).to_numpy()
        fail(idx < 0, INDEX, "(the row index) is negative")
        order = np.argsort(idx, kind="stable")
        dup = np.zeros(len(idx), bool)
        dup[order[1:]] = idx[order[1:]] == idx[order[:-1]]
        fail(dup, INDEX, "(the row index) is repeated; each row is one case and needs its own index")


def _timestamps(col, path: Path):
    """OBD timestamps (``2019-11-24 00:00:34.762830+00:00``) as timestamp[us, UTC]; no offset means UTC
    (:func:`~.log.iso_timestamps`, the rule of every log)."""
    import pyarrow.compute as pc

    unreadable = np.asarray(pc.invert(pc.match_substring_regex(col, _TIMESTAMP)))
    if unreadable.any():
        i = int(np.flatnonzero(unreadable)[0])
        raise OBDError(f"{path}: row {i + 1} (line {i + 2}): column 'timestamp': cannot read {col[i].as_py()!r} "
                       "(OBD writes 2019-11-24 00:00:34.762830+00:00)")
    try:
        return iso_timestamps(col, "UTC")
    except TimestampError as e:
        if e.kind == "mixed":
            (i, j), (a, b) = e.rows, e.values
            raise OBDError(f"{path}: row {j + 1} (line {j + 2}): column 'timestamp': {b!r} has no UTC offset "
                           f"while row {i + 1} has one ({a!r}); give every timestamp an offset or none") from None
        i, v = e.rows[0], e.values[0]
        raise OBDError(f"{path}: row {i + 1} (line {i + 2}): column 'timestamp': cannot read {v!r} "
                       "(OBD writes 2019-11-24 00:00:34.762830+00:00)") from None


def obd_manifest(behavior_policy: str, campaign: str) -> dict:
    """The manifest mapping of an OBD log (see the module docstring), as :func:`~.manifest.from_dict` reads it."""
    if campaign not in CAMPAIGNS:
        raise OBDError(f"unknown campaign {campaign!r}; the dataset has {', '.join(CAMPAIGNS)}")
    n_items = CAMPAIGNS[campaign]
    return {
        "name": f"obd_{behavior_policy}_{campaign}",
        "version": "1",
        "case": {"id_field": "case_id", "timestamp_field": "timestamp", "event_id_field": "event_id",
                 "event_type_field": "event_type"},
        "features": ["position", *[f"user_feature_{j}" for j in range(N_USER_FEATURES)],
                     *[f"affinity_{k}" for k in range(n_items)]],
        "labels": [],
        "decision_points": [{"name": "recommend", "trigger": "decision.executed", "position_field": "position"}],
        "allowed_actions": [str(i) for i in range(n_items)],
        "outcomes": {"positive": ["click"], "negative": ["no_click"]},
    }


def read_obd(source: str | Any, behavior_policy: str | None = None, campaign: str | None = None) -> tuple[Any, dict]:
    """An OBD CSV as canonical events (two per row) and its manifest mapping.

    Args:
        source: an OBD CSV file, a directory holding one (``.../bts/all``), or the dataset's root
            (``.../obd``, with ``behavior_policy`` and ``campaign``).
        behavior_policy: ``random`` or ``bts``; default: read from the path (``<policy>/<campaign>/``).
        campaign: ``all``, ``men`` or ``women``; default: read from the path.

    Returns:
        ``(table, manifest)``: a pyarrow Table in the canonical schema (two events per CSV row, in the
        file's order, attributes after the canonical columns) and the manifest mapping; pass both to
        :func:`arena_env.replay.log.load_log`.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from .schema import CANONICAL

    path, behavior_policy, campaign = _locate(source, behavior_policy, campaign)
    n_items = CAMPAIGNS[campaign]
    table = _read_csv(path, campaign)
    _check_values(table, path, n_items)
    n = table.num_rows
    ts = _timestamps(table.column("timestamp"), path)
    index = table.column(INDEX) if INDEX in table.column_names else pa.array(np.arange(n, dtype=np.int64))
    case = pc.binary_join_element_wise(f"{behavior_policy}/{campaign}/", pc.cast(index, pa.string()), "")

    row = np.repeat(np.arange(n, dtype=np.int64), 2)  # event -> CSV row: decision, outcome, decision, ...
    kind = np.tile(np.array([0, 1], dtype=np.int64), n)  # 0 decision, 1 outcome
    on_decision = pa.array(row, mask=kind == 1)  # take() with these gives nulls on outcome events
    on_outcome = pa.array(row, mask=kind == 0)
    case_id = case.take(pa.array(row))
    out: dict[str, Any] = {
        "case_id": case_id,
        "event_id": pc.binary_join_element_wise(case_id, pa.array(["decision", "outcome"]).take(pa.array(kind)), "/"),
        "timestamp": ts.take(pa.array(row)),
        "seq": pa.array(kind),
        "event_type": pa.array(["decision.executed", "outcome.recorded"]).take(pa.array(kind)),
        "outcome": pc.if_else(pc.equal(table.column("click"), 1), "click", "no_click").take(on_outcome),
        "action": pc.cast(table.column("item_id"), pa.string()).take(on_decision),
        "propensity": table.column("propensity_score").take(on_decision),
        "position": pc.subtract(table.column("position"), 1).take(on_decision),
        "behavior_policy": pa.array(np.full(n, behavior_policy, dtype=object), pa.string()).take(on_decision),
    }
    for j in range(N_USER_FEATURES):
        out[f"user_feature_{j}"] = table.column(f"user_feature_{j}").take(on_decision)
    for k in range(n_items):
        out[f"affinity_{k}"] = table.column(f"{AFFINITY}{k}").take(on_decision)
    names = [c for c in CANONICAL if c in out] + [c for c in out if c not in CANONICAL]
    return pa.table({c: out[c] for c in names}), obd_manifest(behavior_policy, campaign)


def write_obd_log(source: str | Any, out_dir: str | Any, behavior_policy: str | None = None,
                  campaign: str | None = None) -> tuple[Path, Path]:
    """Convert an OBD CSV (see :func:`read_obd`) into ``out_dir/events.parquet`` and ``out_dir/manifest.yaml``.

    The events are validated by :func:`~.log.load_log` before anything is written, and
    ``load_log(out_dir / "events.parquet", out_dir / "manifest.yaml")`` reads them back.  Returns the two paths.
    """
    import yaml

    from .log import load_log

    path, behavior_policy, campaign = _locate(source, behavior_policy, campaign)
    table, manifest = read_obd(path, behavior_policy, campaign)
    log = load_log(table, manifest)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    events, man = out / "events.parquet", out / "manifest.yaml"
    log.to_parquet(events)
    header = (f"# Open Bandit Dataset, {behavior_policy}/{campaign}, converted from {path.name} by "
              "arena_env.replay.obd.\n# Data: Saito, Aihara, Matsutani, Narita (ZOZO Research), CC BY 4.0, "
              "https://research.zozo.com/data.html\n")
    man.write_text(header + yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return events, man


# ------------------------------------------------------------------------------------------------
# the Bernoulli Thompson sampling logger
# ------------------------------------------------------------------------------------------------

def bts_action_dist(campaign: str, n_items: int, len_list: int = LEN_LIST, n_sim: int = 100_000,
                    seed: int = 0) -> np.ndarray:
    """The probability of each item at each position under obp's ``BernoulliTS(is_zozotown_prior=True)``.

    Args:
        campaign: ``all``, ``men`` or ``women`` (the prior of :data:`BTS_PRIOR`).
        n_items: the campaign's number of items (80, 34, 46); checked against the prior.
        len_list: positions filled per round (OBD: 3).
        n_sim: Monte Carlo draws (obp's default is 100,000; the standard error of an entry p is
            sqrt(p (1 - p) / n_sim)).
        seed: seeds ``np.random.default_rng(seed)``; the same seed gives the same array.

    Returns:
        float64 array ``(n_items, len_list)``: entry ``[i, p]`` is the frequency with which item ``i`` is
        ranked at position ``p`` (0-based); every column sums to 1.  obp's ``compute_batch_action_dist``
        returns the same array tiled to ``(n_rounds, n_items, len_list)``.
    """
    if campaign not in BTS_PRIOR:
        raise ValueError(f"unknown campaign {campaign!r}; the priors are for {', '.join(BTS_PRIOR)}")
    alpha = np.asarray(BTS_PRIOR[campaign]["alpha"], dtype=np.float64)
    beta = np.asarray(BTS_PRIOR[campaign]["beta"], dtype=np.float64)
    k = len(alpha)
    if n_items != k:
        raise ValueError(f"n_items={n_items}, but campaign {campaign!r} has {k} items")
    if not 1 <= len_list <= k:
        raise ValueError(f"len_list={len_list} must be between 1 and n_items={k}")
    if n_sim < 1:
        raise ValueError(f"n_sim={n_sim} must be at least 1")
    rng = np.random.default_rng(seed)
    counts = np.zeros((k, len_list), dtype=np.int64)
    for start in range(0, n_sim, _CHUNK):
        theta = rng.beta(alpha, beta, size=(min(_CHUNK, n_sim - start), k))
        ranked = theta.argsort(axis=1)[:, ::-1][:, :len_list]  # obp: predicted_rewards.argsort()[::-1][:len_list]
        for p in range(len_list):
            counts[:, p] += np.bincount(ranked[:, p], minlength=k)
    return counts / n_sim


class BTSPolicy:
    """obp's Bernoulli Thompson sampling with the ZOZOTOWN prior as a replay policy: at a decision row in
    position ``p`` the probability of item ``i`` is ``bts_action_dist(...)[i, p]`` (context-free).  It is
    the sampler as it started the week: the logged BTS propensities drifted from it as the sampler learned."""

    def __init__(self, campaign: str = "all", n_sim: int = 100_000, seed: int = 0, name: str = "bts"):
        if campaign not in BTS_PRIOR:
            raise ValueError(f"bts: unknown campaign {campaign!r}; the priors are for {', '.join(BTS_PRIOR)}")
        self.campaign, self.n_sim, self.seed, self.name = campaign, int(n_sim), int(seed), name
        self._table: np.ndarray | None = None

    def action_dist(self, replay) -> np.ndarray:
        k = len(BTS_PRIOR[self.campaign]["alpha"])
        if replay.n_actions != k:
            raise ValueError(f"bts: campaign {self.campaign!r} has {k} items, the log's manifest {replay.n_actions}")
        if self._table is None:
            self._table = bts_action_dist(self.campaign, k, LEN_LIST, self.n_sim, self.seed)
        if replay.position.max(initial=0) >= LEN_LIST:
            raise ValueError(f"bts: positions go up to {LEN_LIST - 1}, the log has {int(replay.position.max())}")
        order = [int(a) for a in replay.actions]
        return self._table[order][:, replay.position].T.copy()


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    """``python -m arena_env.replay.obd SRC OUT``: convert an OBD CSV to events.parquet + manifest.yaml."""
    ap = argparse.ArgumentParser(prog="python -m arena_env.replay.obd", description=main.__doc__)
    ap.add_argument("src", help="an OBD CSV, its directory (.../bts/all) or the dataset root (with both options)")
    ap.add_argument("out", help="the output directory")
    ap.add_argument("--behavior-policy", choices=BEHAVIOR_POLICIES, default=None,
                    help="default: read from the path (<policy>/<campaign>/<campaign>.csv)")
    ap.add_argument("--campaign", choices=tuple(CAMPAIGNS), default=None, help="default: read from the path")
    args = ap.parse_args(argv)
    from arena_env.paths import check_out_dir

    try:
        check_out_dir(args.out, "OUT")
        events, man = write_obd_log(args.src, args.out, args.behavior_policy, args.campaign)
    except (OBDError, FileExistsError) as exc:
        ap.exit(2, f"error: {exc}\n")
    print(f"wrote {events} and {man}")
    return 0


__all__ = ["BEHAVIOR_POLICIES", "BTS_PRIOR", "CAMPAIGNS", "LEN_LIST", "OBDError", "bts_action_dist", "main",
           "obd_manifest", "read_obd", "write_obd_log"]

if __name__ == "__main__":
    raise SystemExit(main())
