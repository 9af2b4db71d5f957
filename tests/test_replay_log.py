"""Event-log loading: the three formats agree, every kind of bad input gets an error naming the file,
row and field, unsorted input is sorted stably and reported, nothing is lost."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from arena_env.replay import synthetic
from arena_env.replay.log import LogError, load_log
from arena_env.replay.manifest import ManifestError, from_dict, load_manifest, parse_duration
from arena_env.replay.schema import CANONICAL, canonical_schema

MANIFEST = {"name": "t", "decision_points": [{"name": "d", "trigger": "decision.requested"}],
            "allowed_actions": ["wait", "send_reminder", "call"], "outcomes": {"positive": ["converted"]}}

HEADER = "case_id,event_id,timestamp,event_type,action,propensity,score\n"


def _csv(tmp_path, body: str, name="log.csv", header=HEADER):
    p = tmp_path / name
    p.write_text(header + body)
    return p


def _rows_jsonl(table: pa.Table) -> str:
    out = []
    for r in table.to_pylist():
        r = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items() if v is not None}
        out.append(json.dumps(r))
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def leads():
    return synthetic.leads(300, seed=3)


def test_three_formats_give_the_same_log(tmp_path, leads):
    table, man, _ = leads
    pq.write_table(table, tmp_path / "l.parquet")
    pcsv.write_csv(table, tmp_path / "l.csv")
    (tmp_path / "l.jsonl").write_text(_rows_jsonl(table))
    logs = [load_log(tmp_path / f"l.{ext}", man) for ext in ("parquet", "csv", "jsonl")]
    ref = load_log(table, man)
    for log in logs:
        assert len(log) == len(ref) == table.num_rows
        for col in ("case_id", "event_id", "timestamp", "event_type", "action", "outcome", "row"):
            assert log.table.column(col).to_pylist() == ref.table.column(col).to_pylist(), col
        np.testing.assert_allclose(log.column("propensity"), ref.column("propensity"), equal_nan=True)
        np.testing.assert_allclose(log.column("score"), ref.column("score"), equal_nan=True)
        assert log.table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert ref.table.column_names[:len(CANONICAL)] == list(CANONICAL)
    assert [f.type for f in ref.table.schema][:len(CANONICAL)] == [f.type for f in canonical_schema()]


def test_nothing_is_lost_and_rows_point_to_the_source(leads):
    table, man, _ = leads
    log = load_log(table, man)
    assert set(table.column_names) <= set(log.table.column_names)
    assert "final_status" in log.attributes
    rows = np.asarray(log.table.column("row"))
    # the loaded row r is the source's row r (1-based)
    for i in (0, 17, len(log) - 1):
        r = int(rows[i]) - 1
        assert log.table.column("event_id")[i].as_py() == table.column("event_id")[r].as_py()


def test_case_views(leads):
    table, man, _ = leads
    log = load_log(table, man)
    assert log.n_cases == 300 and log.starts[0] == 0 and log.starts[-1] == len(log)
    for c in (0, 150, 299):
        ids = set(log.table.column("case_id").to_pylist()[log.starts[c]:log.starts[c + 1]])
        assert ids == {log.case_ids[c]}
        t = log.time_us[log.starts[c]:log.starts[c + 1]]
        assert np.all(np.diff(t) >= 0)


def test_unsorted_input_is_sorted_stably_and_reported(tmp_path):
    body = ("L1,e1,2024-01-01T09:00:00Z,entity.created,,,\n"
            "L1,e3,2024-01-03T09:00:00Z,interaction.occurred,,,\n"
            "L2,e4,2024-01-01T10:00:00Z,entity.created,,,\n"
            "L1,e2,2024-01-02T09:00:00Z,interaction.occurred,,,\n"
            "L1,e5,2024-01-02T09:00:00Z,interaction.occurred,,,\n")
    log = load_log(_csv(tmp_path, body), MANIFEST)
    assert log.table.column("event_id").to_pylist() == ["e1", "e2", "e5", "e3", "e4"]  # ties keep input order
    assert log.report.moved == 1
    assert "1 events came after a later event of their case" in str(log.report)
    # interleaved cases in time order are not "unsorted"
    body2 = ("L1,e1,2024-01-01T09:00:00Z,entity.created,,,\n"
             "L2,e2,2024-01-01T10:00:00Z,entity.created,,,\n"
             "L1,e3,2024-01-02T09:00:00Z,interaction.occurred,,,\n")
    log2 = load_log(_csv(tmp_path, body2, "b.csv"), MANIFEST)
    assert log2.report.moved == 0 and "time order" not in str(log2.report)
    assert log2.table.column("event_id").to_pylist() == ["e1", "e3", "e2"]


def test_seq_orders_equal_timestamps(tmp_path):
    body = ("L1,e1,2024-01-01T09:00:00Z,decision.executed,call,0.5,,1\n"
            "L1,e0,2024-01-01T09:00:00Z,entity.created,,,,0\n")
    log = load_log(_csv(tmp_path, body, header=HEADER.strip() + ",seq\n"), MANIFEST)
    assert log.table.column("event_id").to_pylist() == ["e0", "e1"]


def test_manifest_renames_columns_and_maps_event_types(tmp_path):
    header = "lead,id,when,kind,chosen,p\n"
    body = ("L1,e1,2024-01-01T09:00:00+01:00,created,,\n"
            "L1,e2,2024-01-01T10:00:00+01:00,email_sent,,\n"
            "L1,e3,2024-01-01T11:00:00+01:00,decision.executed,call,0.25\n")
    man = {**MANIFEST, "case": {"id_field": "lead", "event_id_field": "id", "timestamp_field": "when",
                                "event_type_field": "kind"},
           "columns": {"action": "chosen", "propensity": "p"},
           "event_types": {"map": {"created": "entity.created", "email_sent": "interaction.occurred"}}}
    log = load_log(_csv(tmp_path, body, header=header), man)
    assert log.table.column("event_type").to_pylist() == ["entity.created", "interaction.occurred",
                                                          "decision.executed"]
    assert log.table.column("action").to_pylist() == [None, None, "call"]
    assert log.time_us[0] == 1704096000000000  # 09:00+01:00 = 08:00Z
    without_map = {k: v for k, v in man.items() if k != "event_types"}
    with pytest.raises(LogError, match=r"row 1 \(line 2\): unknown event type 'created' \(also 'email_sent'\)"):
        load_log(tmp_path / "log.csv", without_map)


def test_naive_timestamps_need_a_time_zone(tmp_path):
    body = "L1,e1,2024-07-01 09:00:00,entity.created,,,\n"
    p = _csv(tmp_path, body)
    with pytest.raises(LogError, match=r"log.csv: row 1 \(line 2\): timestamp '2024-07-01 09:00:00' has no UTC "
                                       r"offset.*case.timezone"):
        load_log(p, MANIFEST)
    log = load_log(p, {**MANIFEST, "case": {"timezone": "Europe/Berlin"}})
    assert log.time_us[0] == 1719817200000000  # 09:00 CEST = 07:00Z


@pytest.mark.parametrize("body, pattern", [
    ("L1,e1,2024-01-01T09:00:00Z,entity.created,,,\nL1,e2,2024-01-02 09:00:00,state.changed,,,\n",
     r"row 2 \(line 3\): timestamp '2024-01-02 09:00:00' has no UTC offset while row 1 \(line 2\) has one"),
    ("L1,e1,2024-01-01T09:00:00Z,entity.created,,,\nL1,e2,yesterday Z,state.changed,,,\n",
     r"row 2 \(line 3\): cannot read timestamp 'yesterday Z'"),
    ("L1,e1,2024-01-01T09:00:00Z,entity.created,,,\nL1,e1,2024-01-02T09:00:00Z,state.changed,,,\n",
     r"row 2 \(line 3\): duplicate event id 'e1' \(first at row 1 \(line 2\)\)"),
    ("L1,e1,2024-01-01T09:00:00Z,entity.created,,,\n,e2,2024-01-02T09:00:00Z,state.changed,,,\n",
     r"row 2 \(line 3\): the required field 'case_id' is empty"),
    ("L1,e1,,entity.created,,,\n", r"row 1 \(line 2\): the required field 'timestamp' is empty"),
    ("L1,e1,2024-01-01T09:00:00Z,,,,\n", r"row 1 \(line 2\): the required field 'event_type' is empty"),
    ("L1,e1,2024-01-01T09:00:00Z,lead.moved,,,\n", r"unknown event type 'lead.moved'.*event_types.map"),
    ("L1,e1,2024-01-01T09:00:00Z,decision.executed,call,0,\n", r"row 1 \(line 2\): propensity 0.0 is outside \(0, 1\]"),
    ("L1,e1,2024-01-01T09:00:00Z,decision.executed,call,1.5,\n", r"propensity 1.5 is outside \(0, 1\]"),
    ("L1,e1,2024-01-01T09:00:00Z,decision.executed,fax,0.5,\n",
     r"row 1 \(line 2\): the logged action 'fax' is not one of the manifest's allowed_actions"),
])
def test_bad_rows_are_named(tmp_path, body, pattern):
    p = _csv(tmp_path, body)
    with pytest.raises(LogError, match=pattern) as info:
        load_log(p, MANIFEST)
    assert str(info.value).startswith(str(p))


def test_missing_columns_and_unknown_formats(tmp_path):
    p = _csv(tmp_path, "L1,2024-01-01T09:00:00Z,entity.created\n", header="case_id,timestamp,event_type\n")
    with pytest.raises(LogError, match=r"log.csv: missing column 'event_id'; the columns are case_id, timestamp"):
        load_log(p, MANIFEST)
    with pytest.raises(LogError, match=r"missing column 'lead_id' \(the manifest's name for case_id\)"):
        load_log(p, {**MANIFEST, "case": {"id_field": "lead_id"}})
    q = tmp_path / "log.xlsx"
    q.write_text("x")
    with pytest.raises(LogError, match=r"unknown log format '.xlsx'"):
        load_log(q, MANIFEST)
    with pytest.raises(LogError, match="no such file"):
        load_log(tmp_path / "nope.csv", MANIFEST)


def test_object_refs_round_trip_and_filter(tmp_path):
    header = "case_id,event_id,timestamp,event_type,object_refs\n"
    body = ('L1,e1,2024-01-01T09:00:00Z,entity.created,"[{""object_type"": ""clinic"", ""object_id"": ""c1"", '
            '""role"": ""target""}]"\n'
            'L2,e2,2024-01-01T10:00:00Z,entity.created,"[{""object_type"": ""clinic"", ""object_id"": ""c2""}]"\n'
            'L1,e3,2024-01-02T10:00:00Z,interaction.occurred,"[{""object_type"": ""clinic"", ""object_id"": '
            '""c1""}, {""object_type"": ""assistant"", ""object_id"": ""a9"", ""role"": ""owner""}]"\n'
            'L2,e4,2024-01-03T10:00:00Z,interaction.occurred,\n')
    log = load_log(_csv(tmp_path, body, header=header), MANIFEST)
    assert log.table.column("object_refs").to_pylist()[0] == [
        {"object_type": "clinic", "object_id": "c1", "role": "target"}]
    sub = log.filter_by_object("clinic", "c1")
    assert sub.table.column("event_id").to_pylist() == ["e1", "e3"]
    assert sub.filter_by_object("assistant", "a9").table.column("event_id").to_pylist() == ["e3"]
    assert len(log.filter_by_object("clinic", "zz")) == 0
    log.to_parquet(tmp_path / "out.parquet")
    back = load_log(tmp_path / "out.parquet", MANIFEST)
    assert back.table.column("object_refs").to_pylist() == log.table.column("object_refs").to_pylist()
    assert back.table.column("event_id").to_pylist() == log.table.column("event_id").to_pylist()
    bad = 'L1,e1,2024-01-01T09:00:00Z,entity.created,"[{""object_id"": ""c1""}]"\n'
    with pytest.raises(LogError, match=r"row 1 \(line 2\): object reference .* needs object_type and object_id"):
        load_log(_csv(tmp_path, bad, "bad.csv", header=header), MANIFEST)
    bad2 = 'L1,e1,2024-01-01T09:00:00Z,entity.created,"[{oops"\n'
    with pytest.raises(LogError, match=r"row 1 \(line 2\): object_refs is not valid JSON"):
        load_log(_csv(tmp_path, bad2, "bad2.csv", header=header), MANIFEST)


def test_jsonl_lines_are_named(tmp_path):
    p = tmp_path / "l.jsonl"
    p.write_text('{"case_id": "L1", "event_id": "e1", "timestamp": "2024-01-01T09:00:00Z", "event_type": "entity.created"}\n'
                 '{"case_id": "L1", "event_id": "e2", "timestamp": "2024-01-01T09:00:00Z", "event_type": "bogus"}\n')
    with pytest.raises(LogError, match=r"l.jsonl: row 2 \(line 2\): unknown event type 'bogus'"):
        load_log(p, MANIFEST)
    p.write_text('{"case_id": "L1", "event_id": \n')
    with pytest.raises(LogError, match=r"l.jsonl: cannot read it as jsonl"):
        load_log(p, MANIFEST)


# ------------------------------------------------------------------------------------------------
# manifests
# ------------------------------------------------------------------------------------------------

def test_manifest_round_trip_and_file(tmp_path):
    import yaml

    full = {**synthetic.manifest(), "define": {"warm": "score > 0.5"},
            "decision_points": [{"name": "follow_up", "trigger": "decision.requested"},
                                {"name": "nudge", "trigger": "timer.elapsed", "every": "12h", "until": "log_end",
                                 "condition": "days_since_last_event > 2", "allowed_actions": ["wait", "call"]}],
            "default_action": "wait"}
    m = from_dict(full, "m.yaml")
    assert from_dict(m.to_dict(), "again") == from_dict(m.to_dict(), "again")
    assert from_dict(m.to_dict(), "m.yaml") == m
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump(full))
    assert load_manifest(p).decision_points == m.decision_points
    assert m.decision_points[1].every_us == 12 * 3600 * 10**6 and m.decision_points[1].timer
    p.write_text("name: [unclosed\n")
    with pytest.raises(ManifestError, match=r"m.yaml: malformed YAML at line"):
        load_manifest(p)


@pytest.mark.parametrize("patch, pattern", [
    ({"colour": 1}, r"m.yaml: unknown key 'colour'; the keys are name, version"),
    ({"decision_points": [{"name": "d", "trigger": "timer.elapsed", "every": "soon"}]},
     r"decision_points\[0\].every: expected a duration such as 1d"),
    ({"decision_points": [{"name": "d", "trigger": "lead.moved"}]},
     r"decision_points\[0\].trigger: 'lead.moved' is not an event type"),
    ({"decision_points": [{"name": "d", "trigger": "decision.requested", "every": "1d"}]},
     r"'every' and 'until' apply to trigger timer.elapsed only"),
    ({"decision_points": [{"name": "d", "trigger": "decision.requested", "allowed_actions": ["fax"]}]},
     r"decision_points\[0\].allowed_actions: 'fax' is not one of allowed_actions"),
    ({"default_action": "fax"}, r"default_action 'fax' is not one of allowed_actions"),
    ({"constraints": [{"name": "c", "rule": "x > 1", "severity": "bad"}]},
     r"constraints\[0\].severity: expected one of warning, violation, critical"),
    ({"outcomes": {"positive": ["won"], "negative": ["won"]}}, r"outcomes: 'won' is both positive and negative"),
    ({"outcomes": {"positive": ["won"], "values": {"lost": 1}}}, r"outcomes.values: unknown key 'lost'"),
    ({"case": {"timezone": "Mars/Olympus"}}, r"case.timezone: unknown time zone 'Mars/Olympus'"),
    ({"allowed_actions": ["a", "a"]}, r"allowed_actions\[1\]: the action 'a' is listed twice"),
    ({"features": ["x"], "labels": ["x"]}, r"'x' is both a feature and a label"),
])
def test_manifest_errors(patch, pattern):
    with pytest.raises(ManifestError, match=pattern):
        from_dict({**MANIFEST, **patch}, "m.yaml")


def test_durations():
    assert parse_duration("1d", "x") == 86_400_000_000
    assert parse_duration("90m", "x") == 5_400_000_000
    assert parse_duration(30, "x") == 30_000_000
    for bad in ("0d", "-1h", "1y", True, "d"):
        with pytest.raises(ManifestError):
            parse_duration(bad, "x")


def test_duplicate_ids_are_found_in_any_order(leads):
    """The duplicate check holds whatever the order of the ids (sorted input takes a faster path)."""
    table, man, _ = leads
    ids = table.column("event_id").to_pylist()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ids))
    shuffled = table.take(pa.array(order))
    load_log(shuffled, man)  # unique ids in shuffled order: fine
    ids2 = shuffled.column("event_id").to_pylist()
    ids2[200] = ids2[7]
    bad = shuffled.set_column(shuffled.column_names.index("event_id"), "event_id", pa.array(ids2))
    with pytest.raises(LogError, match=rf"row 201: duplicate event id '{ids2[7]}' \(first at row 8\)"):
        load_log(bad, man)


def test_numeric_outcomes_by_value_field():
    with pytest.raises(ManifestError, match="either by label \\(values\\) or by a numeric column \\(value_field\\)"):
        from_dict({**MANIFEST, "outcomes": {"positive": ["converted"], "values": {"converted": 2},
                                            "value_field": "revenue"}}, "m.yaml")
    m = from_dict({**MANIFEST, "outcomes": {"value_field": "revenue"}}, "m.yaml")
    assert m.outcomes.value_field == "revenue" and from_dict(m.to_dict(), "m.yaml") == m


def test_iso_timestamps_is_the_one_rule_of_the_log_readers():
    """All aware or all naive (read in the zone), the rows of a problem named, 0-based; the replay log
    and the OBD reader both word its errors (tests above and in test_obd.py)."""
    from arena_env.replay.log import TimestampError, iso_timestamps

    def ts(values, zone=None):
        return iso_timestamps(pa.array(values, pa.string()), zone)

    want = pa.array([1714555800000000, 1714559400000000], pa.timestamp("us", tz="UTC"))
    assert ts(["2024-05-01T09:30:00Z", "2024-05-01T12:30:00+02:00"]).equals(want)
    assert ts(["2024-05-01 11:30:00", "2024-05-01 12:30:00"], "Europe/Berlin").equals(want)
    assert len(ts([])) == 0
    cases = [
        (["2024-05-01T09:30:00Z", "2024-05-01T09:30:00", "x"], None, "mixed", (0, 1)),
        (["2024-05-01T09:30:00", "2024-05-01T10:30:00"], None, "naive", (0,)),
        (["2024-05-01T09:30:00Z", "2024-13-01T09:30:00Z"], None, "unreadable", (1,)),
        (["2024-05-01 09:30:00", "yesterday"], "UTC", "unreadable", (1,)),
        # a value without an offset that is not a time is unreadable, not a naive time mixed with aware ones
        (["2024-05-01T09:30:00Z", "yesterday"], None, "unreadable", (1,)),
        (["2024-05-01T09:30:00Z", "2024-13-45T99:00", "2024-05-01T09:30:00"], None, "unreadable", (1,)),
        (["yesterday"], None, "unreadable", (0,)),
        # a local time the clocks skip or repeat (DST) is not silently moved
        (["2024-05-01 09:30:00", "2024-03-31 02:30:00"], "Europe/Berlin", "local", (1,)),
        (["2024-10-27 02:30:00"], "Europe/Berlin", "local", (0,)),
    ]
    for values, zone, kind, rows in cases:
        with pytest.raises(TimestampError) as e:
            ts(values, zone)
        assert (e.value.kind, e.value.rows) == (kind, rows)
        assert e.value.values == tuple(values[r] for r in rows)
    # a date alone is a naive time (its "-01" is the day, not an offset)
    assert ts(["2024-05-01", "2024-05-01 02:00:00"], "Europe/Berlin").equals(
        pa.array([1714514400000000, 1714521600000000], pa.timestamp("us", tz="UTC")))


def test_a_log_with_a_header_and_no_events_loads_empty(tmp_path):
    log = load_log(_csv(tmp_path, ""), MANIFEST)
    assert log.report.n_events == 0 and log.table.num_rows == 0


# ------------------------------------------------------------------------------------------------
# every format reads timestamps, propensities and its own name alike
# ------------------------------------------------------------------------------------------------

def _three_files(tmp_path, rows: list[dict], stem="l") -> dict:
    """The same rows written as CSV, JSONL and Parquet (every value a string, as a CSV holds them)."""
    cols = list(rows[0])
    (tmp_path / f"{stem}.csv").write_text(",".join(cols) + "\n" + "".join(
        ",".join("" if r[c] is None else str(r[c]) for c in cols) + "\n" for r in rows))
    (tmp_path / f"{stem}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in cols}),
                   tmp_path / f"{stem}.parquet")
    return {ext: tmp_path / f"{stem}.{ext}" for ext in ("csv", "jsonl", "parquet")}


def _events(times) -> list[dict]:
    return [{"case_id": "L1", "event_id": f"e{i}", "timestamp": t, "event_type": "entity.created"}
            for i, t in enumerate(times)]


@pytest.mark.parametrize("times, zone, want", [
    (["2024-01-01T09:00:00Z"], None, [1704099600000000]),
    (["2024-01-01T09:00:00Z"], "America/New_York", [1704099600000000]),  # an offset wins over the zone
    (["2024-01-01T09:00:00+02:00", "2024-01-01T09:00:00-0500"], None, [1704092400000000, 1704117600000000]),
    (["2024-01-01T09:00:00"], "America/New_York", [1704117600000000]),  # 09:00 EST = 14:00Z
    (["2024-01-01 09:00:00.250"], "UTC", [1704099600250000]),
])
def test_timestamps_are_read_alike_in_every_format(tmp_path, times, zone, want):
    """JSONL timestamps are text, read by the rule CSV and Parquet string columns are read by (the JSON
    reader's own parsing dropped the offsets: 09:00Z was read as 09:00 in case.timezone, or refused)."""
    man = {**MANIFEST, "case": {"timezone": zone}} if zone else MANIFEST
    for fmt, path in _three_files(tmp_path, _events(times)).items():
        log = load_log(path, man)
        assert log.time_us.tolist() == want, fmt
        assert log.table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize("times, zone, pattern", [
    (["2024-01-01T09:00:00Z", "2024-01-02 09:00:00"], "UTC",
     r"row 2{line}: timestamp '2024-01-02 09:00:00' has no UTC offset while row 1{line1} has one"),
    (["2024-01-01T09:00:00"], None, r"row 1{line1}: timestamp '2024-01-01T09:00:00' has no UTC offset; add "
                                    r"offsets .* or set case.timezone"),
    # an unreadable time without an offset among aware ones is unreadable (was: "mixed naive and aware")
    (["2024-01-01T09:00:00Z", "yesterday"], None, r"row 2{line}: cannot read timestamp 'yesterday'; write ISO-8601"),
    (["2024-01-01T09:00:00Z", "2024-13-45T99:00"], None,
     r"row 2{line}: cannot read timestamp '2024-13-45T99:00'; write ISO-8601"),
    (["2024-03-31 02:30:00"], "Europe/Berlin",
     r"row 1{line1}: timestamp '2024-03-31 02:30:00' does not exist or is ambiguous in Europe/Berlin"),
])
def test_bad_timestamps_are_named_alike_in_every_format(tmp_path, times, zone, pattern):
    man = {**MANIFEST, "case": {"timezone": zone}} if zone else MANIFEST
    lines = {"csv": (r" \(line 3\)", r" \(line 2\)"), "jsonl": (r" \(line 2\)", r" \(line 1\)"), "parquet": ("", "")}
    for fmt, path in _three_files(tmp_path, _events(times)).items():
        line, line1 = lines[fmt]
        with pytest.raises(LogError, match=pattern.format(line=line, line1=line1)) as info:
            load_log(path, man)
        assert str(info.value).startswith(str(path)), fmt


def test_jsonl_timestamps_that_are_not_strings_are_named(tmp_path):
    p = tmp_path / "l.jsonl"
    p.write_text('{"case_id": "L1", "event_id": "e1", "timestamp": "2024-01-01T09:00:00Z", "event_type": "entity.created"}\n'
                 '\n{"case_id": "L1", "event_id": "e2", "timestamp": 1704099600, "event_type": "entity.created"}\n')
    with pytest.raises(LogError, match=r"l.jsonl: row 2 \(line 3\): the timestamp 1704099600 is a JSON number; write "
                                       r"ISO-8601 times as strings"):
        load_log(p, MANIFEST)
    p.write_text('{"case_id": "L1", "event_id": "e1", "when": "2024-01-01T09:00:00Z", "event_type": "entity.created"}\n')
    with pytest.raises(LogError, match=r"l.jsonl: missing column 'timestamp'; the columns are case_id, event_id, when"):
        load_log(p, MANIFEST)


def test_a_file_of_another_format_than_its_name_is_named(tmp_path):
    body = "L1,e1,2024-01-01T09:00:00Z,entity.created,,,\n"
    log = load_log(_csv(tmp_path, body), MANIFEST)
    log.to_parquet(tmp_path / "real.parquet")
    for name in ("log.csv", "log.jsonl"):
        (tmp_path / name).write_bytes((tmp_path / "real.parquet").read_bytes())
        with pytest.raises(LogError, match=r"looks like Parquet \(it starts with the Parquet magic bytes PAR1\), not "
                                           r"(csv|jsonl); rename it to end in .parquet, or pass format='parquet'") as info:
            load_log(tmp_path / name, MANIFEST)
        assert str(info.value).isprintable()  # no binary quoted to the terminal
        assert load_log(tmp_path / name, MANIFEST, format="parquet").table.column("event_id").to_pylist() == ["e1"]
    (tmp_path / "text.parquet").write_text(HEADER + body)
    with pytest.raises(LogError, match=r"text.parquet: not a Parquet file \(a Parquet file starts with the magic bytes "
                                       r"PAR1\); it looks like text \(CSV\?\): rename it to end in .csv, or pass "
                                       r"format='csv'"):
        load_log(tmp_path / "text.parquet", MANIFEST)
    assert len(load_log(tmp_path / "text.parquet", MANIFEST, format="csv")) == 1
    (tmp_path / "lines.parquet").write_text('{"case_id": "L1"}\n')
    with pytest.raises(LogError, match=r"it looks like JSONL: rename it to end in .jsonl, or pass format='jsonl'"):
        load_log(tmp_path / "lines.parquet", MANIFEST)
    with pytest.raises(LogError, match=r"unknown format 'xlsx'; pass one of csv, jsonl, parquet"):
        load_log(tmp_path / "log.csv", MANIFEST, format="xlsx")


def _decisions(propensities) -> list[dict]:
    return [{"case_id": "L1", "event_id": f"e{i}", "timestamp": f"2024-01-01T0{i}:00:00Z",
             "event_type": "decision.executed", "action": "call", "propensity": p}
            for i, p in enumerate(propensities)]


def test_propensities_must_be_numbers_and_the_first_other_row_is_named(tmp_path):
    """One rule: a propensity is a number.  CSV has no number type, so there text that reads as a number
    is one; text in a Parquet or JSONL file ("0.5") is refused (it was converted silently in Parquet),
    and the first row that is not a number is named with its value (no row was named before)."""
    files = _three_files(tmp_path, _decisions(["0.5", "0.25", "abc"]))
    with pytest.raises(LogError, match=r"l.csv: row 3 \(line 4\): cannot read the propensity 'abc' as a number; "
                                       r"write a probability in \(0, 1\] such as 0.25, or leave it empty"):
        load_log(files["csv"], MANIFEST)
    with pytest.raises(LogError, match=r"l.jsonl: row 1 \(line 1\): the propensity '0.5' is a JSON string; a "
                                       r'propensity is a number: store it as a JSON number such as 0.25, not the '
                                       r'string "0.25"'):
        load_log(files["jsonl"], MANIFEST)
    with pytest.raises(LogError, match=r"l.parquet: row 1: the propensity '0.5' is text \(string column\); a "
                                       r"propensity is a number: store it as a float column"):
        load_log(files["parquet"], MANIFEST)
    ok = _three_files(tmp_path, _decisions(["0.5", None, "0.25"]), stem="ok")
    assert np.isnan(load_log(ok["csv"], MANIFEST).column("propensity")[1])
    for fmt in ("jsonl", "parquet"):
        with pytest.raises(LogError, match=r"row 1.*the propensity '0.5' is"):
            load_log(ok[fmt], MANIFEST)
    big = pa.table({"case_id": ["L1"] * 3, "event_id": ["e1", "e2", "e3"], "timestamp": ["2024-01-01T09:00:00Z"] * 3,
                    "event_type": ["decision.executed"] * 3, "action": ["call"] * 3,
                    "propensity": pa.array([None, "abc", "0.5"], pa.large_string())})
    with pytest.raises(LogError, match=r"<table>: row 2: the propensity 'abc' is text \(large_string column\)"):
        load_log(big, MANIFEST)
    with pytest.raises(LogError, match=r"<table>: row 1: the propensity True is a boolean"):
        load_log(big.set_column(5, "propensity", pa.array([True, None, None])), MANIFEST)
    p = tmp_path / "mixed.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in _decisions([0.5, 0.25, "0.5"])))
    with pytest.raises(LogError, match=r"mixed.jsonl: row 3 \(line 3\): field 'propensity' holds a string \('0.5'\) "
                                       r"where row 1 \(line 1\) holds a number; give each field values of one JSON "
                                       r'type \(write numbers as 0.25, not "0.25"\)'):
        load_log(p, MANIFEST)
    p.write_text("".join(json.dumps(r) + "\n" for r in _decisions([0.5, 1, None])))
    assert load_log(p, MANIFEST).column("propensity")[:2].tolist() == [0.5, 1.0]


def test_yaml_booleans_where_a_label_belongs_get_a_hint_to_quote_them(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text('name: r\ndecision_points: [{name: d, trigger: decision.requested}]\nallowed_actions: [a]\n'
                 'outcomes: {positive: [yes], negative: ["no"]}\n')
    with pytest.raises(ManifestError, match=r'outcomes.positive\[0\]: expected a non-empty string, found True; YAML '
                                            r'reads an unquoted yes, no, on, off, true or false as a boolean: quote it '
                                            r'as written, e.g. "yes"'):
        load_manifest(p)
    p.write_text('name: r\ndecision_points: [{name: d, trigger: decision.requested}]\nallowed_actions: [a]\n'
                 'outcomes: {positive: ["yes"], negative: no}\n')
    with pytest.raises(ManifestError, match=r'outcomes.negative: expected a list of strings, found False; .*e.g. "no"'):
        load_manifest(p)
    p.write_text('name: r\ndecision_points: [{name: d, trigger: decision.requested}]\nallowed_actions: [a]\n'
                 'outcomes: {positive: ["yes"], negative: ["no"]}\n')
    assert load_manifest(p).outcomes.positive == ("yes",)
