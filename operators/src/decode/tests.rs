use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
use scorestream_schemas::{ColumnType, DeadLetterStage, EventSchema, FieldSpec};

use super::{Decoder, JsonDecoder};
use crate::source::kafka::RawChunk;

/// An event schema of `(name, type, required)` fields.
fn schema_of(fields: &[(&str, ColumnType, bool)]) -> EventSchema {
    let fields = fields
        .iter()
        .map(|&(name, field_type, required)| FieldSpec {
            name: name.into(),
            field_type,
            required,
        })
        .collect();
    EventSchema::try_new(fields).expect("schema")
}

fn schema() -> EventSchema {
    schema_of(&[
        ("event_id", ColumnType::String, true),
        ("amount", ColumnType::Float64, true),
        ("country", ColumnType::String, false),
        ("event_time", ColumnType::Timestamp, true),
    ])
}

fn offsets(b: arrow::array::RecordBatch) -> Vec<i64> {
    let col = b.column_by_name("source_offset").expect("source_offset");
    col.as_primitive::<Int64Type>().values().to_vec()
}

fn chunk(payloads: &[&str]) -> RawChunk {
    let mut c = RawChunk::with_capacity(payloads.len());
    let mut ends = [None, None];
    for (i, p) in payloads.iter().enumerate() {
        let (part, offset) = ((i % 2) as i32, 100 + i as i64);
        let start = ends[i % 2].unwrap_or(offset);
        ends[i % 2] = Some(offset + 1);
        let at = c.push(
            "tx",
            (i % 2) as i32,
            100 + i as i64,
            1_700_000_000_000 + i as i64,
            Some(b"k"),
            p.as_bytes(),
        );
        let topic = c.topic(at).clone();
        c.coverage
            .extend(&topic, part, start..offset + 1)
            .expect("in order");
    }
    c
}

const GOOD: &str =
    r#"{"event_id":"e1","amount":12.5,"country":"DE","event_time":"2026-01-01T00:00:00Z"}"#;

#[test]
fn good_events_decode_with_provenance() {
    let d = JsonDecoder::new(schema(), 1 << 20);
    let env = d
        .decode(&chunk(&[
            GOOD,
            r#"{"event_id":"e2","amount":3,"event_time":1700000000000,"extra":1}"#,
        ]))
        .expect("decode");
    assert!(env.dead_letters.is_empty(), "{:?}", env.dead_letters);
    let b = env.batch.expect("rows");
    assert_eq!(b.num_rows(), 2);
    assert_eq!(
        b.schema().fields().len(),
        4 + 5,
        "event fields and provenance"
    );
    assert_eq!(
        b.column_by_name("amount")
            .expect("amount")
            .as_primitive::<Float64Type>()
            .value(1),
        3.0
    );
    assert!(b.column_by_name("country").expect("country").is_null(1));
    let t = b
        .column_by_name("event_time")
        .expect("t")
        .as_primitive::<TimestampMillisecondType>();
    assert_eq!(t.value(0), 1_767_225_600_000);
    assert_eq!(
        b.column_by_name("source_offset")
            .expect("o")
            .as_primitive::<Int64Type>()
            .value(1),
        101
    );
    assert_eq!(env.coverage.get("tx", 0), Some(&(100..101)));
    assert_eq!(env.coverage.get("tx", 1), Some(&(101..102)));
}

#[test]
fn every_kind_of_bad_event_becomes_a_dead_letter_with_its_reason() {
    let d = JsonDecoder::new(schema(), 200);
    let big = format!(
        r#"{{"event_id":"big","amount":1,"event_time":1,"pad":"{}"}}"#,
        "x".repeat(300)
    );
    let payloads = [
        GOOD,
        r#"{"event_id":"e2","amount":"#,    // truncated
        r#"{"amount":1.0,"event_time":1}"#, // missing required
        r#"{"event_id":"e4","amount":"lots","event_time":1}"#, // wrong type
        "[1,2,3]",                          // not an object
        big.as_str(),                       // oversized
        "",                                 // empty
        r#"{"event_id":"e8","amount":2,"event_time":"yesterday"}"#, // bad timestamp
        GOOD,
    ];
    let input = chunk(&payloads);
    let env = d.decode(&input).expect("decode");
    assert_eq!(env.rows(), 2, "{:?}", env.dead_letters);
    assert_eq!(env.dead_letters.len(), 7);
    assert_eq!(
        env.coverage, input.coverage,
        "every message is accounted for, good or dead"
    );
    let by_offset = |o: i64| {
        env.dead_letters
            .iter()
            .find(|d| d.offset == o)
            .expect("dead letter")
    };
    assert_eq!(by_offset(101).stage, DeadLetterStage::Parse);
    assert!(by_offset(101).reason.contains("not valid JSON"));
    assert_eq!(by_offset(101).raw, payloads[1].as_bytes());
    assert!(
        by_offset(102)
            .reason
            .contains("missing required field `event_id`"),
        "{}",
        by_offset(102).reason
    );
    assert!(
        by_offset(103)
            .reason
            .contains("field `amount`: expected float64"),
        "{}",
        by_offset(103).reason
    );
    assert_eq!(by_offset(104).stage, DeadLetterStage::Schema);
    assert_eq!(by_offset(105).stage, DeadLetterStage::Oversized);
    assert_eq!(by_offset(106).reason, "empty message");
    assert!(
        by_offset(107).reason.contains("event_time"),
        "{}",
        by_offset(107).reason
    );
    let offsets = offsets(env.batch.expect("rows"));
    assert_eq!(offsets, vec![100, 108]);
}

#[test]
fn two_objects_in_one_message_are_rejected() {
    let d = JsonDecoder::new(schema(), 1 << 20);
    let two = format!("{GOOD}{GOOD}");
    let env = d.decode(&chunk(&[&two, GOOD])).expect("decode");
    assert_eq!(env.rows(), 1);
    assert_eq!(env.dead_letters.len(), 1);
    assert_eq!(env.dead_letters[0].offset, 100);
}

#[test]
fn isolation_finds_scattered_bad_events_in_a_large_chunk() {
    let d = JsonDecoder::new(schema(), 1 << 20);
    let bad = r#"{"event_id":"bad","amount":true,"event_time":1}"#;
    let payloads: Vec<&str> = (0..1000)
        .map(|i| if i % 97 == 13 { bad } else { GOOD })
        .collect();
    let env = d.decode(&chunk(&payloads)).expect("decode");
    let expected_bad = (0..1000).filter(|i| i % 97 == 13).count();
    assert_eq!(env.dead_letters.len(), expected_bad);
    assert_eq!(env.rows(), 1000 - expected_bad);
    let offsets = offsets(env.batch.expect("rows"));
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "rows keep their order"
    );
}

#[test]
fn every_row_carries_a_trace_id_the_producers_when_it_sent_one() {
    let d = JsonDecoder::new(schema(), 1 << 20);
    let mut c = chunk(&[GOOD, GOOD, GOOD]);
    c.set_traceparent(
        1,
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    let env = d.decode(&c).expect("decode");
    let b = env.batch.expect("rows");
    let ids = b
        .column_by_name("trace_id")
        .expect("trace_id")
        .as_string::<i32>();
    assert_eq!(ids.value(1), "4bf92f3577b34da6a3ce929d0e0e4736");
    for i in [0, 2] {
        assert_eq!(ids.value(i).len(), 32);
        assert!(ids.value(i).bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(ids.value(i), format!("{:032x}", c.trace_id(i)));
    }
    assert_ne!(ids.value(0), ids.value(2));
}

/// A value the schema check lets through but arrow-json refuses (an
/// integer in a string, too large for int64) is still a dead letter of its
/// own, so the check never has to mirror arrow-json exactly.
#[test]
fn what_only_arrow_json_refuses_is_still_isolated() {
    let d = JsonDecoder::new(schema_of(&[("count", ColumnType::Int64, true)]), 1 << 20);
    let (good, odd) = (
        r#"{"count":"12"}"#,
        r#"{"count":"99999999999999999999999"}"#,
    );
    let payloads: Vec<&str> = (0..64)
        .map(|i| if i % 20 == 7 { odd } else { good })
        .collect();
    let env = d.decode(&chunk(&payloads)).expect("decode");
    let expected_bad = (0..64).filter(|i| i % 20 == 7).count();
    assert_eq!(
        env.dead_letters.len(),
        expected_bad,
        "{:?}",
        env.dead_letters
    );
    assert_eq!(env.rows(), 64 - expected_bad);
    assert!(
        env.dead_letters
            .iter()
            .all(|d| d.stage == DeadLetterStage::Schema)
    );
}

mod fast_path {
    //! The scanner against the slow path (serde check, then arrow-json) on
    //! the same messages: equal rows, equal dead letters, equal reasons.

    use proptest::prelude::*;
    use scorestream_schemas::{ColumnType, EventSchema};

    use super::chunk;
    use crate::decode::JsonDecoder;
    use crate::decode::scan::{RowScan, Slot, scan};

    fn schema() -> EventSchema {
        super::schema_of(&[
            ("s", ColumnType::String, true),
            ("n", ColumnType::Int64, false),
            ("x", ColumnType::Float64, false),
            ("b", ColumnType::Bool, false),
            ("t", ColumnType::Timestamp, false),
        ])
    }

    /// Awkward spellings of each field's value, good and bad.
    const S: &[&str] = &[
        r#""plain""#,
        r#""q\"uo\\te\n\t\/\b\f\r""#,
        r#""\u00e9t\u00E9 \ud83d\ude00""#,
        "\"caf\u{e9} \u{65e5}\u{672c}\"",
        r#""""#,
        "null",
        "12",
        r#""\ud800""#,
        r#""bad \x escape""#,
        "\"raw\ttab\"",
        "[\"a\"]",
    ];
    const N: &[&str] = &[
        "0",
        "-12",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "1e3",
        "2.0",
        "2.5",
        r#""12""#,
        r#"" 12""#,
        r#""-7""#,
        r#""1.5""#,
        r#""1e3""#,
        r#""99999999999999999999""#,
        r#""+3""#,
        "null",
        "true",
        "01",
        "-",
        "1.",
        "-0",
    ];
    const X: &[&str] = &[
        "0",
        "-0.0",
        "12.5",
        "1e-7",
        "1.7976931348623157e308",
        "1e400",
        "5e-324",
        "0.1234567890123456789",
        "123456789012345678901234567890",
        "2.2250738585072011e-308",
        r#""3.5""#,
        r#""-2.5e3""#,
        r#""1e400""#,
        r#""0.1234567890123456789""#,
        r#""NaN""#,
        r#""inf""#,
        r#""1.""#,
        r#""abc""#,
        "null",
        "2",
        ".5",
        "1E+2",
    ];
    const B: &[&str] = &["true", "false", "null", "1", r#""true""#, "tru"];
    const T: &[&str] = &[
        "1700000000000",
        "-5",
        r#""2026-01-01T00:00:00Z""#,
        r#""2026-01-01T01:00:00+01:00""#,
        r#""2026-01-01 00:00:00""#,
        r#""2026-01-01""#,
        r#""2026-01-01T00:00:00.123456Z""#,
        r#""yesterday""#,
        "1.7e12",
        "null",
        "99999999999999999999",
    ];
    const EXTRA: &[&str] = &[
        "",
        r#""extra":{"a":[1,2,{"b":null}],"c":"\"","d":-1.5e3,"e":true}"#,
        r#""extra":[]"#,
        r#""e\u0078tra":1"#,
        r#""s":"duplicate""#,
        r#""extra":[1,]"#,
        r#""extra":{"a" 1}"#,
        r#""extra":nul"#,
    ];

    fn message(pick: &[usize; 7], generated: &(String, f64, i64)) -> String {
        let (text, float, int) = generated;
        let s = match pick[0] % (S.len() + 1) {
            i if i < S.len() => S[i].to_string(),
            _ => serde_json::to_string(text).expect("json string"),
        };
        let x = match pick[2] % (X.len() + 2) {
            i if i < X.len() => X[i].to_string(),
            i if i == X.len() => format!("{float}"),
            _ => format!("{float:e}"),
        };
        let n = match pick[1] % (N.len() + 1) {
            i if i < N.len() => N[i].to_string(),
            _ => int.to_string(),
        };
        let mut pairs = vec![
            format!(r#""s":{s}"#),
            format!(r#""n":{n}"#),
            format!(r#""x":{x}"#),
            format!(r#""b":{}"#, B[pick[3] % B.len()]),
            format!(r#""t":{}"#, T[pick[4] % T.len()]),
        ];
        // Some fields absent, sometimes in another order.
        pairs.retain(|p| !(pick[5] & 0b11 == 1 && p.starts_with(r#""b""#)));
        if pick[5] & 0b100 != 0 {
            pairs.reverse();
        }
        let extra = EXTRA[pick[6] % EXTRA.len()];
        if !extra.is_empty() {
            pairs.insert(pick[6] % pairs.len(), extra.to_string());
        }
        if pick[5] & 0b1000 != 0 {
            format!(" {{ {} }}\n", pairs.join(" ,\n "))
        } else {
            format!("{{{}}}", pairs.join(","))
        }
    }

    fn messages() -> impl Strategy<Value = Vec<String>> {
        let one = (
            prop::array::uniform7(0usize..64),
            (
                any::<String>(),
                any::<f64>().prop_filter("finite", |f| f.is_finite()),
                any::<i64>(),
            ),
        )
            .prop_map(|(pick, generated)| message(&pick, &generated));
        prop::collection::vec(one, 1..40)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn scanner_and_slow_path_agree(payloads in messages()) {
            let d = JsonDecoder::new(schema(), 1 << 20);
            let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
            let input = chunk(&refs);
            let fast = d.decode_with(&input, true).expect("fast");
            let slow = d.decode_with(&input, false).expect("slow");
            prop_assert_eq!(&fast.batch, &slow.batch);
            let letters = |e: &crate::Envelope| -> Vec<_> {
                e.dead_letters
                    .iter()
                    .map(|l| (l.offset, l.stage, l.reason.clone()))
                    .collect()
            };
            prop_assert_eq!(letters(&fast), letters(&slow));
        }
    }

    /// The agreement above would hold trivially if the scanner gave up on
    /// everything: ordinary messages must stay on the fast path.
    #[test]
    fn ordinary_messages_are_read_by_the_scanner() {
        let schema = schema();
        let mut row = RowScan::default();
        let read = |p: &str, row: &mut RowScan| scan(p.as_bytes(), schema.fields(), row).is_some();
        for p in [
            r#"{"s":"a","n":1,"x":2.5,"b":true,"t":"2026-01-01T00:00:00Z"}"#,
            r#" {"t":1700000000000, "x":-0.5e-3,"s":"\"esc\" \u00e9","extra":{"k":[1,{"z":null}]}} "#,
            r#"{"s":"","n":null,"b":false}"#,
            r#"{"s":"a","n":"-12","x":"2.5e-3"}"#,
        ] {
            assert!(read(p, &mut row), "{p}");
        }
        assert!(read(r#"{"s":"q\"\u00e9\ud83d\ude00","n":-7}"#, &mut row));
        assert_eq!(row.slots[1], Slot::Int(-7));
        match &row.slots[0] {
            Slot::Unescaped(r) => assert_eq!(&row.scratch[r.clone()], "q\"\u{e9}\u{1f600}"),
            other => panic!("{other:?}"),
        }
        for p in [
            r#"{"n":1}"#,
            r#"{"s":"a","n":"1.5"}"#,
            r#"{"s":"a","s":"b"}"#,
            r#"{"s":"a"} x"#,
            r#"{"s":"a",}"#,
        ] {
            assert!(!read(p, &mut row), "{p}");
        }
    }
}
