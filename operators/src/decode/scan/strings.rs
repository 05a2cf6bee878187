//! JSON strings for the scanner: text without escapes stays a range of the
//! message (no copy); escaped text is decoded once onto the row's scratch.

use super::{Scanner, Slot};

impl Scanner<'_> {
    /// A string after its opening quote. Text without escapes is returned
    /// as a range of the message; escaped text is decoded onto `scratch`.
    #[inline]
    pub(super) fn string(&mut self, scratch: &mut String) -> Option<Slot> {
        let start = self.i;
        loop {
            match self.next()? {
                b'"' => return Some(Slot::Raw(start..self.i - 1)),
                b'\\' => break,
                c if c < 0x20 => return None,
                _ => {}
            }
        }
        // Valid UTF-8 (checked up front) cut at ASCII quotes and
        // backslashes stays valid.
        let from = scratch.len();
        scratch.push_str(self.t.get(start..self.i - 1)?);
        self.i -= 1;
        loop {
            let run = self.i;
            loop {
                match self.peek()? {
                    b'"' | b'\\' => break,
                    c if c < 0x20 => return None,
                    _ => self.i += 1,
                }
            }
            scratch.push_str(self.t.get(run..self.i)?);
            if self.next()? == b'"' {
                return Some(Slot::Unescaped(from..scratch.len()));
            }
            let c = match self.next()? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => self.unicode_escape()?,
                _ => return None,
            };
            scratch.push(c);
        }
    }

    /// A string after its opening quote, checked and dropped.
    #[inline]
    pub(super) fn skip_string(&mut self, scratch: &mut String) -> Option<()> {
        let from = scratch.len();
        self.string(scratch)?;
        scratch.truncate(from);
        Some(())
    }

    /// `XXXX` after `\u`, with a following `\uXXXX` when it is a surrogate
    /// pair. Lone surrogates go to the slow path.
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if !(0xD800..0xDC00).contains(&hi) {
            return char::from_u32(hi);
        }
        self.eat(b'\\')?;
        self.eat(b'u')?;
        let lo = self.hex4()?;
        if !(0xDC00..0xE000).contains(&lo) {
            return None;
        }
        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.b.get(self.i..self.i + 4)?;
        self.i += 4;
        let s = std::str::from_utf8(digits).ok()?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(s, 16).ok()
    }
}
