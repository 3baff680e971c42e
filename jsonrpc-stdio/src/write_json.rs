//! Params onto the wire, byte for byte as `serde_json::to_writer` writes
//! them, with strings escaped eight bytes at a time.
//!
//! serde_json looks up every byte of a string in its escape table, about
//! nine instructions a byte: most of the cost of sending a request whose
//! params are text (a prompt, a file), and more than the rest of the
//! request's bookkeeping at 100 bytes. Here a string is scanned a word at a
//! time for the three things JSON escapes (`"`, `\`, control characters)
//! and copied in runs.
//!
//! The common shapes are written here: structs, maps with string or
//! integer keys, sequences, strings, integers, booleans, options, unit and
//! newtype variants, and serde_json's `RawValue` (its text, as serde_json
//! writes it). Floats and byte strings are handed, one value at a time, to
//! serde_json's own serializer (its shortest round-trip formatting). A
//! `Serialize` impl that fails fails here with serde_json's error for it.
//! Anything else — tuple and struct variants, other map keys — and the whole
//! value is written again by serde_json. So the output is serde_json's in
//! every case; the tests compare the two.
//!
//! Requests and notifications are written into one reused buffer per
//! thread ([`with_scratch`]) and copied from there into the outgoing queue,
//! so sending allocates nothing.

use std::fmt;

use serde::ser::{self, Impossible, Serialize};

/// Appends `value` as compact JSON to `out`, exactly as
/// `serde_json::to_writer` would.
pub(crate) fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    let start = out.len();
    match value.serialize(&mut Writer(out)) {
        Ok(()) => Ok(()),
        Err(Stop::Unsupported) => {
            out.truncate(start);
            serde_json::to_writer(out, value)
        }
        Err(Stop::Failed(e)) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// The methods written as a string (a char, a unit variant's name) or as
/// what they wrap (a newtype struct, unless it is one of serde_json's own),
/// alike for values and map keys.
macro_rules! as_strings_or_unwrapped {
    () => {
        fn serialize_char(self, v: char) -> Result<(), Stop> {
            self.serialize_str(v.encode_utf8(&mut [0; 4]))
        }

        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
        ) -> Result<(), Stop> {
            self.serialize_str(variant)
        }

        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            name: &'static str,
            value: &T,
        ) -> Result<(), Stop> {
            if is_serde_json_private(name) {
                return Err(Stop::Unsupported);
            }
            value.serialize(self)
        }
    };
}

/// Methods of one argument that leave the value to serde_json.
macro_rules! refuse {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method(self, _: $ty) -> Result<(), Stop> {
            Err(Stop::Unsupported)
        }
    )*};
}

/// Tuple and struct variants are left to serde_json.
macro_rules! refuse_variants {
    () => {
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Stop> {
            Err(Stop::Unsupported)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Stop> {
            Err(Stop::Unsupported)
        }
    };
}

struct Writer<'v>(&'v mut Vec<u8>);

/// `$then!` over every integer method of a serializer, with its type.
macro_rules! with_integers {
    ($then:ident) => {
        $then!(
            serialize_i8: i8,
            serialize_i16: i16,
            serialize_i32: i32,
            serialize_i64: i64,
            serialize_i128: i128,
            serialize_u8: u8,
            serialize_u16: u16,
            serialize_u32: u32,
            serialize_u64: u64,
            serialize_u128: u128
        );
    };
}

/// The integer methods: every width written by itoa, as serde_json writes
/// them.
macro_rules! integers {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method(self, v: $ty) -> Result<(), Stop> {
            self.0.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            Ok(())
        }
    )*};
}

/// Why this writer stopped.
#[derive(Debug)]
enum Stop {
    /// A shape it leaves to serde_json.
    Unsupported,
    /// The value's `Serialize` impl failed: its error, as serde_json makes
    /// it (so it is not run a second time by serde_json to fail again).
    Failed(serde_json::Error),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Unsupported => f.write_str("left to serde_json"),
            Stop::Failed(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Stop::Failed(<serde_json::Error as ser::Error>::custom(msg))
    }
}

/// Floats and byte strings, written by serde_json's own serializer: only
/// that value is its, not the whole params again.
macro_rules! by_serde_json {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method(self, v: $ty) -> Result<(), Stop> {
            ser::Serializer::$method(&mut serde_json::Serializer::new(&mut *self.0), v)
                .map_err(Stop::Failed)
        }
    )*};
}

/// serde_json's private names for its `RawValue` (and, with features we do
/// not enable, its arbitrary-precision `Number`): it recognises them and
/// writes their text verbatim. Every name it reserves starts so.
fn is_serde_json_private(name: &str) -> bool {
    name.starts_with("$serde_json::")
}

/// The name a `RawValue` serializes under: a struct of that name with one
/// field of that name, whose value is the JSON text. serde_json writes the
/// text as it is; so does this writer. Any other use of a private name is
/// left to serde_json.
const RAW_VALUE: &str = "$serde_json::private::RawValue";

impl<'a> ser::Serializer for &'a mut Writer<'_> {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Impossible<(), Stop>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Impossible<(), Stop>;

    fn serialize_bool(self, v: bool) -> Result<(), Stop> {
        self.0.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    with_integers!(integers);

    by_serde_json!(serialize_f32: f32, serialize_f64: f64, serialize_bytes: &[u8]);

    fn serialize_str(self, v: &str) -> Result<(), Stop> {
        write_str(self.0, v);
        Ok(())
    }

    as_strings_or_unwrapped!();

    fn serialize_none(self) -> Result<(), Stop> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Stop> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Stop> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Stop> {
        self.serialize_unit()
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        self.0.push(b'{');
        write_str(self.0, variant);
        self.0.push(b':');
        value.serialize(&mut *self)?;
        self.0.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, Stop> {
        Ok(Compound::open(self.0, b'['))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Stop> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Compound<'a>, Stop> {
        self.serialize_seq(Some(len))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, Stop> {
        Ok(Compound::open(self.0, b'{'))
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Compound<'a>, Stop> {
        if name == RAW_VALUE {
            return Ok(Compound {
                out: self.0,
                first: true,
                raw: true,
            });
        }
        if is_serde_json_private(name) {
            return Err(Stop::Unsupported);
        }
        self.serialize_map(Some(len))
    }

    refuse_variants!();
}

/// A sequence or a map being written: `first` until its first element.
/// `raw`: a `RawValue`, whose one field is its text.
struct Compound<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    raw: bool,
}

impl<'a> Compound<'a> {
    /// A sequence (`[`) or a map (`{`), opened.
    fn open(out: &'a mut Vec<u8>, bracket: u8) -> Self {
        out.push(bracket);
        Compound {
            out,
            first: true,
            raw: false,
        }
    }

    fn separate(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        value.serialize(&mut Writer(self.out))
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Stop;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        self.separate();
        self.element(value)
    }

    fn end(self) -> Result<(), Stop> {
        self.out.push(b']');
        Ok(())
    }
}

/// Tuples and tuple structs are written as sequences.
macro_rules! as_a_sequence {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Stop;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
                ser::SerializeSeq::serialize_element(self, value)
            }

            fn end(self) -> Result<(), Stop> {
                ser::SerializeSeq::end(self)
            }
        }
    )*};
}

as_a_sequence!(
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Stop;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Stop> {
        self.separate();
        key.serialize(Key(self.out))?;
        self.out.push(b':');
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        self.element(value)
    }

    fn end(self) -> Result<(), Stop> {
        self.out.push(b'}');
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        if self.raw {
            if key != RAW_VALUE || !std::mem::take(&mut self.first) {
                return Err(Stop::Unsupported);
            }
            return value.serialize(RawText(self.out));
        }
        self.separate();
        write_str(self.out, key);
        self.out.push(b':');
        self.element(value)
    }

    fn end(self) -> Result<(), Stop> {
        if self.raw {
            return if self.first {
                Err(Stop::Unsupported)
            } else {
                Ok(())
            };
        }
        ser::SerializeMap::end(self)
    }
}

/// The methods of a serializer that takes one kind of scalar: every other
/// shape is left to serde_json.
macro_rules! refuse_the_rest {
    () => {
        type Ok = ();
        type Error = Stop;
        type SerializeSeq = Impossible<(), Stop>;
        type SerializeTuple = Impossible<(), Stop>;
        type SerializeTupleStruct = Impossible<(), Stop>;
        type SerializeTupleVariant = Impossible<(), Stop>;
        type SerializeMap = Impossible<(), Stop>;
        type SerializeStruct = Impossible<(), Stop>;
        type SerializeStructVariant = Impossible<(), Stop>;

        refuse!(
            serialize_bool: bool,
            serialize_f32: f32,
            serialize_f64: f64,
            serialize_bytes: &[u8],
            serialize_unit_struct: &'static str
        );
        fn serialize_none(self) -> Result<(), Stop> {
            Err(Stop::Unsupported)
        }
        fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Stop> {
            Err(Stop::Unsupported)
        }
        fn serialize_unit(self) -> Result<(), Stop> {
            Err(Stop::Unsupported)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), Stop> {
            Err(Stop::Unsupported)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Stop> {
            Err(Stop::Unsupported)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Stop> {
            Err(Stop::Unsupported)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Stop> {
            Err(Stop::Unsupported)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Stop> {
            Err(Stop::Unsupported)
        }
        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, Stop> {
            Err(Stop::Unsupported)
        }
        refuse_variants!();
    };
}

/// A `RawValue`'s text: written as it is (serde_json checked it is JSON
/// when the `RawValue` was made).
struct RawText<'a>(&'a mut Vec<u8>);

impl ser::Serializer for RawText<'_> {
    fn serialize_str(self, v: &str) -> Result<(), Stop> {
        self.0.extend_from_slice(v.as_bytes());
        Ok(())
    }

    refuse!(serialize_char: char);
    with_integers!(refuse);

    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Stop> {
        Err(Stop::Unsupported)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Stop> {
        Err(Stop::Unsupported)
    }

    refuse_the_rest!();
}

/// A map key: a string (or a char, or a unit variant's name), or an
/// integer written as a string, as serde_json writes them; serde_json has
/// the last word on anything else.
struct Key<'a>(&'a mut Vec<u8>);

/// Integer keys, quoted.
macro_rules! quoted_integers {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method(self, v: $ty) -> Result<(), Stop> {
            self.0.push(b'"');
            self.0.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            self.0.push(b'"');
            Ok(())
        }
    )*};
}

impl ser::Serializer for Key<'_> {
    fn serialize_str(self, v: &str) -> Result<(), Stop> {
        write_str(self.0, v);
        Ok(())
    }

    with_integers!(quoted_integers);

    as_strings_or_unwrapped!();

    refuse_the_rest!();
}

/// High bits set in `word` where one of its eight bytes is one JSON
/// escapes: a control character, `"` or `\`; zero when there is none.
/// (Each test sets a byte's high bit where the byte is below 0x20, or equal
/// to the byte sought; a byte with its own high bit set, part of a
/// multi-byte character, never passes `!word`. A byte after a match may
/// show a false bit too, which only sends that block to the slow path.)
#[inline]
fn escapes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x;
    let quote = zero_in(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_in(word ^ (ONES * u64::from(b'\\')));
    (below_space | quote | backslash) & HIGH
}

/// How many bytes are scanned as one block: four words, tested together.
const BLOCK: usize = 32;

/// Whether a block (of whole words) holds a byte JSON escapes.
#[inline]
fn block_escapes(block: &[u8]) -> bool {
    block
        .chunks_exact(8)
        .map(|word| escapes(u64::from_le_bytes(word.try_into().expect("eight bytes"))))
        .fold(0, |all, bits| all | bits)
        != 0
}

/// For each byte, what follows the backslash of its escape (`u` for
/// `\u00XX`), or 0 for a byte written as it is: serde_json's choices.
static ESCAPE: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Writes `s` as a JSON string: clean runs copied whole, found a block of
/// 32 bytes (then a word) at a time; each escape written as serde_json
/// writes it.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Short and clean, as method names and keys mostly are: one copy.
    if bytes.len() < 16 && bytes.iter().all(|&byte| ESCAPE[usize::from(byte)] == 0) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes.len() - i >= 8 {
            // Clean blocks, then clean words: what is left starts within a
            // word of an escape, or of the end.
            i += bytes[i..]
                .chunks_exact(BLOCK)
                .take_while(|block| !block_escapes(block))
                .count()
                * BLOCK;
            i += bytes[i..]
                .chunks_exact(8)
                .take_while(|word| !block_escapes(word))
                .count()
                * 8;
        }
        // A word with an escape in it, or a short string, or the last few
        // bytes: one by one.
        let end = bytes.len().min(i + 8);
        while i < end {
            let byte = bytes[i];
            i += 1;
            let escape = ESCAPE[usize::from(byte)];
            if escape == 0 {
                continue;
            }
            out.extend_from_slice(&bytes[run..i - 1]);
            run = i;
            if escape == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let high = HEX[usize::from(byte >> 4)];
                let low = HEX[usize::from(byte & 0xf)];
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', high, low]);
            } else {
                out.extend_from_slice(&[b'\\', escape]);
            }
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

thread_local! {
    /// Where requests are serialized before they are copied into the
    /// outgoing queue: one buffer per thread, reused, so a request allocates
    /// nothing to be serialized.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with an empty scratch buffer. A `Serialize` impl that sends a
/// request of its own while being serialized gets a fresh buffer.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let result = f(&mut buf);
            // One huge request must not keep its buffer for the thread's life.
            if buf.capacity() > 1 << 20 {
                *buf = Vec::new();
            }
            result
        }
        Err(_) => f(&mut Vec::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::{json, Value};
    use std::collections::{BTreeMap, HashMap};

    /// Ours and serde_json's bytes, for `value`.
    fn both<T: Serialize + ?Sized>(value: &T) -> (Vec<u8>, Vec<u8>) {
        let mut ours = b"prefix".to_vec();
        write(&mut ours, value).unwrap();
        let theirs = [b"prefix".to_vec(), serde_json::to_vec(value).unwrap()].concat();
        (ours, theirs)
    }

    fn same<T: Serialize + ?Sized>(value: &T) {
        let (ours, theirs) = both(value);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }

    /// As [`same`], and written here, not left to serde_json.
    fn same_and_fast<T: Serialize + ?Sized>(value: &T) {
        let mut ours = Vec::new();
        assert!(
            value.serialize(&mut Writer(&mut ours)).is_ok(),
            "left to serde_json"
        );
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&serde_json::to_vec(value).unwrap())
        );
        same(value);
    }

    /// A small deterministic generator: the same cases on every run.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn string(&mut self) -> String {
            const PIECES: &[&str] = &[
                "a",
                "xyz",
                " ",
                "\"",
                "\\",
                "\n",
                "\r",
                "\t",
                "\u{8}",
                "\u{c}",
                "\u{0}",
                "\u{1f}",
                "\u{7f}",
                "/",
                "é",
                "€",
                "𝄞",
                "\u{2028}",
                "0123456789abcdef",
                "'",
            ];
            let len = self.below(40);
            (0..len)
                .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
                .collect()
        }

        /// A value of any shape; with `floats`, now and then a float
        /// (which serde_json writes).
        fn value(&mut self, depth: u32, floats: bool) -> Value {
            match self.below(if depth > 3 { 6 } else { 8 }) {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 1),
                2 => json!(self.next() as i64 - (1 << 30)),
                3 => json!(u64::MAX - self.below(3)),
                4 if floats => json!(self.next() as f64 / 7.0),
                4 => json!(i64::MIN + self.below(3) as i64),
                5 => Value::String(self.string()),
                6 => (0..self.below(5))
                    .map(|_| self.value(depth + 1, floats))
                    .collect(),
                _ => Value::Object(
                    (0..self.below(5))
                        .map(|_| (self.string(), self.value(depth + 1, floats)))
                        .collect(),
                ),
            }
        }
    }

    #[test]
    fn every_char_is_escaped_as_serde_json_escapes_it() {
        for c in (0..=0x2ffu32).chain([0x2028, 0xfeff, 0x1f600]) {
            let c = char::from_u32(c).unwrap();
            same_and_fast(&c);
            same_and_fast(&c.to_string());
            // At every offset within a word, and across word boundaries.
            for pad in 0..17 {
                same_and_fast(&format!("{}{c}{}", "x".repeat(pad), "y".repeat(16 - pad)));
            }
        }
    }

    #[test]
    fn generated_strings_and_values_match_serde_json() {
        let mut rng = Lcg(7);
        for _ in 0..20_000 {
            same_and_fast(&rng.string());
        }
        for _ in 0..5_000 {
            same_and_fast(&rng.value(0, false));
            same(&rng.value(0, true));
            // Floats too are written here (each by serde_json's serializer).
            same_and_fast(&rng.value(0, true));
        }
    }

    #[derive(Serialize)]
    enum Shape<'a> {
        Unit,
        Newtype(&'a str),
        Tuple(u8, u8),
        Struct { side: u32 },
    }

    #[derive(Serialize)]
    struct Params<'a> {
        text: &'a str,
        n: Option<u64>,
        none: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        shapes: Vec<Shape<'a>>,
        tuple: (i8, char, bool),
        unit: (),
        bytes: &'a [u8],
        #[serde(with = "serde_bytes_as_bytes")]
        raw_bytes: &'a [u8],
        float: f32,
        big: i128,
        by_name: BTreeMap<&'a str, Shape<'a>>,
        by_number: HashMap<u32, bool>,
        raw: &'a serde_json::value::RawValue,
        boxed_raw: Box<serde_json::value::RawValue>,
    }

    /// Serializes a byte slice with `serialize_bytes`, as serde_bytes does.
    mod serde_bytes_as_bytes {
        pub fn serialize<S: serde::Serializer>(v: &&[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    #[test]
    fn typed_params_of_every_shape_match_serde_json() {
        let raw =
            serde_json::value::RawValue::from_string(r#"{"kept": [1, 2.50]}"#.into()).unwrap();
        let params = Params {
            text: "line one\nline \"two\"\t\\",
            n: Some(42),
            none: None,
            skipped: None,
            shapes: vec![
                Shape::Unit,
                Shape::Newtype("x"),
                Shape::Tuple(1, 2),
                Shape::Struct { side: 3 },
            ],
            tuple: (-8, '\u{1}', true),
            unit: (),
            bytes: b"\x00\xff",
            raw_bytes: b"\x01",
            float: 1.5,
            big: -(1 << 100),
            by_name: [("a", Shape::Unit), ("b", Shape::Newtype("y"))].into(),
            by_number: [(7, true)].into(),
            raw: &raw,
            boxed_raw: raw.clone(),
        };
        same(&params);
        // Each field alone too, so a shape written here is compared on its
        // own, not only as part of a whole that serde_json rewrote.
        same_and_fast(&params.shapes[..2]);
        same_and_fast(&params.tuple);
        same_and_fast(&params.bytes);
        same_and_fast(&params.big);
        same_and_fast(&params.by_name);
        same(&params.by_number);
        same_and_fast(&params.by_number);
        same_and_fast(&params.float);
        same_and_fast(&[f64::NAN, f64::INFINITY, -0.0, 1e300, 0.1]);
        same_and_fast(&BTreeMap::from([(-1i128, "a"), (1 << 100, "b")]));
        same_and_fast(&params.raw);
        same_and_fast(&params.boxed_raw);
        #[derive(Serialize)]
        struct WithRaw<'a> {
            before: u8,
            raw: &'a serde_json::value::RawValue,
            after: [&'a serde_json::value::RawValue; 2],
        }
        let text = serde_json::value::RawValue::from_string(r#" "a\"b" "#.into()).unwrap();
        same_and_fast(&WithRaw {
            before: 1,
            raw: &raw,
            after: [&text, &raw],
        });
        same(&params.shapes[2..]);
        same_and_fast(&json!({"nested": {"deep": [[], {}, [null]], "": ""}}));
        same_and_fast(&Some(Some(())));
    }

    #[test]
    fn a_failing_serialize_impl_gets_serde_json_s_error() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no such thing"))
            }
        }
        let mut out = b"kept".to_vec();
        let err = write(&mut out, &[Some(Fails)]).unwrap_err();
        assert!(err.to_string().contains("no such thing"), "{err}");
        assert!(out.starts_with(b"kept"));
        assert_eq!(
            err.to_string(),
            serde_json::to_vec(&[Some(Fails)]).unwrap_err().to_string()
        );
    }

    #[test]
    fn a_serialize_impl_runs_once_even_when_its_value_has_floats() {
        // An impl may not be able to run twice (it drains an iterator, or
        // counts); a float among the params no longer sends the whole
        // value to serde_json for a second run.
        struct Once(std::cell::Cell<u32>);
        impl Serialize for Once {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.set(self.0.get() + 1);
                (1.5f64, "x", [0.25f32]).serialize(s)
            }
        }
        let once = Once(std::cell::Cell::new(0));
        let mut out = Vec::new();
        write(&mut out, &once).unwrap();
        assert_eq!(out, br#"[1.5,"x",[0.25]]"#);
        assert_eq!(once.0.get(), 1);
    }

    #[test]
    fn long_clean_strings_are_copied_whole() {
        let text = "x".repeat(60_000);
        same_and_fast(&text);
        same_and_fast(&format!("{text}\"{text}"));
    }

    #[test]
    fn the_scratch_buffer_is_kept_for_small_requests_and_let_go_after_a_huge_one() {
        let capacity = || SCRATCH.with(|scratch| scratch.borrow().capacity());
        with_scratch(|buf| buf.extend_from_slice(&[b'x'; 200]));
        assert!(capacity() >= 200);
        with_scratch(|buf| {
            assert!(buf.is_empty(), "the last request's bytes were left in it");
            buf.resize(2 << 20, b'x');
        });
        assert!(capacity() <= 1 << 20, "{}", capacity());
        // A request serialized while another is (by a `Serialize` impl)
        // gets a buffer of its own.
        let nested = with_scratch(|outer| {
            outer.push(b'a');
            with_scratch(|inner| {
                inner.push(b'b');
                inner.clone()
            })
        });
        assert_eq!(nested, b"b");
    }
}
