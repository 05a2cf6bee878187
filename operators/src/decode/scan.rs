//! The decoder's fast path: one pass over a message that reads each
//! declared field's value into a slot, ready to append to the Arrow
//! builders.
//!
//! It accepts only what it is certain of, and produces exactly the values
//! arrow-json would: numbers are read with correctly rounded parsers (as
//! arrow-json's lexical-core is), timestamps through the same arrow-cast
//! function. Anything unusual (an escaped key, a duplicate field, a number
//! in a string, a missing required field, broken JSON) makes it give up on
//! that message, and the slow path (the serde check, then arrow-json on the
//! one message) decides and words the reason. So the scanner may be
//! stricter than arrow-json, never more lenient.

use std::ops::Range;

use arrow::compute::kernels::cast_utils::string_to_datetime;
use scorestream_schemas::{ColumnType, FieldSpec};

use super::timestamp;

mod strings;

/// Nested values deeper than this are left to the slow path.
const MAX_DEPTH: u32 = 64;

/// One field's value in the message being read.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Slot {
    /// Absent or `null`.
    Null,
    /// Text without escapes: a range of the message.
    Raw(Range<usize>),
    /// Text that had escapes: a range of [`RowScan::scratch`].
    Unescaped(Range<usize>),
    /// An int64 value, or a timestamp in milliseconds.
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// Scratch reused from message to message, so reading allocates nothing
/// once it has grown to the largest message.
#[derive(Debug, Default)]
pub(super) struct RowScan {
    pub slots: Vec<Slot>,
    pub scratch: String,
    seen: Vec<bool>,
}

/// Reads `payload` into `row.slots` (one per field). `None` means "not
/// certain": the caller takes the slow path for this message.
pub(super) fn scan<'a>(
    payload: &'a [u8],
    fields: &[FieldSpec],
    row: &mut RowScan,
) -> Option<&'a str> {
    let text = simdutf8::basic::from_utf8(payload).ok()?;
    row.slots.clear();
    row.slots.resize(fields.len(), Slot::Null);
    row.seen.clear();
    row.seen.resize(fields.len(), false);
    row.scratch.clear();
    let mut s = Scanner {
        t: text,
        b: payload,
        i: 0,
    };
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if s.peek()? == b'}' {
        s.i += 1;
    } else {
        let mut hint = 0;
        loop {
            let key = s.key()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let at = if fields.get(hint).is_some_and(|f| f.name == key) {
                Some(hint)
            } else {
                fields.iter().position(|f| f.name == key)
            };
            match at {
                Some(i) => {
                    // arrow-json keeps the last of duplicate keys; leave
                    // that to it.
                    if std::mem::replace(&mut row.seen[i], true) {
                        return None;
                    }
                    s.value(fields[i].field_type, &mut row.scratch, &mut row.slots[i])?;
                    hint = i + 1;
                }
                None => s.skip(0, &mut row.scratch)?,
            }
            s.ws();
            match s.next()? {
                b',' => s.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    if s.i != payload.len() {
        return None;
    }
    let complete = fields
        .iter()
        .zip(&row.slots)
        .all(|(f, v)| !f.required || *v != Slot::Null);
    complete.then_some(text)
}

/// A JSON number (`(text, integral)`, see [`Scanner::number`]) as `ty`.
fn number_slot((n, integral): (&str, bool), ty: ColumnType) -> Option<Slot> {
    match ty {
        ColumnType::Float64 => {
            // Both this and lexical-core round correctly, so they agree.
            let v: f64 = n.parse().ok()?;
            v.is_finite().then_some(Slot::Float(v))
        }
        // `1e3` or `2.0` as an integer: the slow path decides.
        ColumnType::Int64 | ColumnType::Timestamp if integral => n.parse().ok().map(Slot::Int),
        _ => None,
    }
}

struct Scanner<'a> {
    /// The message, already checked to be UTF-8, and its bytes.
    t: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// A key without escapes (keys with them go to the slow path).
    fn key(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match self.next()? {
                b'"' => return self.t.get(start..self.i - 1),
                b'\\' => return None,
                c if c < 0x20 => return None,
                _ => {}
            }
        }
    }

    /// A number per the JSON grammar; whether it had a fraction or exponent.
    fn number(&mut self) -> Option<(&'a str, bool)> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digit()?;
            integral = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digit()?;
            integral = false;
        }
        Some((self.t.get(start..self.i)?, integral))
    }

    /// At least one digit.
    fn digit(&mut self) -> Option<()> {
        self.next()?.is_ascii_digit().then_some(())?;
        self.digits();
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A declared field's value, converted the way arrow-json converts it,
    /// written into `out`. Writing in place rather than returning the slot
    /// matters: moving the enum out through `Option` copied it as
    /// overlapping chunks, and the stalled store forwarding took a quarter
    /// of the scanner's own samples.
    fn value(&mut self, ty: ColumnType, scratch: &mut String, out: &mut Slot) -> Option<()> {
        match (self.peek()?, ty) {
            (b'n', _) => {
                self.literal(b"null")?;
                *out = Slot::Null;
            }
            (b'"', ColumnType::String) => {
                self.i += 1;
                *out = self.string(scratch)?;
            }
            (b'"', ColumnType::Timestamp) => {
                self.i += 1;
                let from = scratch.len();
                let s = match self.string(scratch)? {
                    Slot::Raw(r) => self.t.get(r)?,
                    Slot::Unescaped(r) => scratch.get(r)?,
                    _ => return None,
                };
                let ms = match timestamp::rfc3339_utc_millis(s.as_bytes()) {
                    Some(ms) => ms,
                    None => string_to_datetime(&chrono::Utc, s).ok()?.timestamp_millis(),
                };
                scratch.truncate(from);
                *out = Slot::Int(ms);
            }
            (b't', ColumnType::Bool) => {
                self.literal(b"true")?;
                *out = Slot::Bool(true);
            }
            (b'f', ColumnType::Bool) => {
                self.literal(b"false")?;
                *out = Slot::Bool(false);
            }
            (
                b'-' | b'0'..=b'9',
                ColumnType::Float64 | ColumnType::Int64 | ColumnType::Timestamp,
            ) => {
                let number = self.number()?;
                *out = number_slot(number, ty)?;
            }
            // A number sent as text ("12.5"), common from some producers:
            // arrow-json parses the text, so the same rules apply, as long
            // as the text is a JSON number itself.
            (b'"', ColumnType::Float64 | ColumnType::Int64) => {
                self.i += 1;
                let Slot::Raw(r) = self.string(scratch)? else {
                    return None;
                };
                let text = self.t.get(r)?;
                let mut inner = Scanner {
                    t: text,
                    b: text.as_bytes(),
                    i: 0,
                };
                let number = inner.number()?;
                if inner.i != text.len() {
                    return None;
                }
                *out = number_slot(number, ty)?;
            }
            _ => return None,
        }
        Some(())
    }

    /// Skips a value of an undeclared field, checking its syntax.
    fn skip(&mut self, depth: u32, scratch: &mut String) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => {
                self.i += 1;
                self.skip_string(scratch)?;
            }
            b'n' => self.literal(b"null")?,
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'-' | b'0'..=b'9' => {
                self.number()?;
            }
            open @ (b'[' | b'{') => {
                self.i += 1;
                let close = if open == b'[' { b']' } else { b'}' };
                self.ws();
                if self.peek()? == close {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.eat(b'"')?;
                        self.skip_string(scratch)?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                    }
                    self.skip(depth + 1, scratch)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        c if c == close => break,
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
        Some(())
    }
}
