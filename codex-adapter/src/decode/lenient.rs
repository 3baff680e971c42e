//! Field readers for wire structs that never fail.
//!
//! A peer's payload is untrusted input, and one field of an unexpected type
//! must not cost the rest of the notification: every field of the wire
//! structs reads through one of these, so a field of the wrong JSON type
//! reads as absent (a scalar), as the default (an object), or as empty (a
//! list). Deserializing a wire struct from a `&Value` therefore always
//! succeeds, and unknown fields are ignored.
//!
//! Strings are borrowed: the decoders read `&'a Value`, whose strings
//! deserialize as borrowed. A deserializer that only lends strings
//! transiently yields them as absent.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A wire struct read from `value`; anything but an object reads as the
/// default.
pub(crate) fn read<'a, T: Deserialize<'a> + Default>(value: &'a Value) -> T {
    Object::<T>::deserialize(value).map_or_else(|_| T::default(), |o| o.0)
}

/// The `visit_*` methods for the JSON values (other than arrays and
/// objects) a visitor has no use for: each yields `$value`.
macro_rules! every_other_value_is {
    ($value:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// One JSON value, reduced to what a scalar field can use.
enum Scalar<'de> {
    Str(&'de str),
    Unsigned(u64),
    Signed(i64),
    Bool(bool),
    Unusable,
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Signed(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Unsigned(v))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Unusable)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(v))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Unusable)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Unusable)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Unusable)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Unusable)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Unusable)
    }
}

fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Scalar<'de>, D::Error> {
    d.deserialize_any(ScalarVisitor)
}

/// A string, or absent.
pub(crate) fn str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de str>, D::Error> {
    Ok(match scalar(d)? {
        Scalar::Str(s) => Some(s),
        _ => None,
    })
}

/// A non-negative integer, or absent (negative numbers and floats too).
pub(crate) fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match scalar(d)? {
        Scalar::Unsigned(n) => Some(n),
        Scalar::Signed(n) => u64::try_from(n).ok(),
        _ => None,
    })
}

/// An integer that fits an `i64`, or absent.
pub(crate) fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match scalar(d)? {
        Scalar::Signed(n) => Some(n),
        Scalar::Unsigned(n) => i64::try_from(n).ok(),
        _ => None,
    })
}

/// A boolean, or absent.
pub(crate) fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match scalar(d)? {
        Scalar::Bool(b) => Some(b),
        _ => None,
    })
}

/// A string-valued enum (`#[serde(other)]` catches unknown strings); any
/// other JSON value reads as absent.
pub(crate) fn tag<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(match scalar(d)? {
        Scalar::Str(s) => T::deserialize(
            serde::de::value::BorrowedStrDeserializer::<D::Error>::new(s),
        )
        .ok(),
        _ => None,
    })
}

/// An object as `T`; any other value reads as `T::default()`.
pub(crate) fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Object::<T>::deserialize(d).map(|o| o.0)
}

/// `null` or absent as `None`, an object as `Some(T)`, any other value as
/// `Some(T::default())`.
pub(crate) fn nullable_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<Object<T>>::deserialize(d)?.map(|o| o.0))
}

/// An array whose elements each read as [`object`]; any other value reads as
/// empty.
pub(crate) fn objects<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(List::<Object<T>>::deserialize(d)?
        .0
        .into_iter()
        .map(|o| o.0)
        .collect())
}

/// An array of words, each a string or absent; any other value reads as
/// empty.
pub(crate) fn strs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<&'de str>>, D::Error> {
    struct Word<'de>(Option<&'de str>);
    impl<'de> Deserialize<'de> for Word<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            str(d).map(Word)
        }
    }
    Ok(List::<Word>::deserialize(d)?
        .0
        .into_iter()
        .map(|w| w.0)
        .collect())
}

/// An array of text parts, each a string or an object with a string
/// `text`; other elements are skipped, and any other value reads as empty.
pub(crate) fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<&'de str>, D::Error> {
    Ok(List::<TextPart>::deserialize(d)?
        .0
        .into_iter()
        .filter_map(|p| p.0)
        .collect())
}

/// An object's entries, each value read as [`object`]; any other value reads
/// as empty.
pub(crate) fn entries<'de, D, T>(d: D) -> Result<Vec<(&'de str, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    struct EntriesVisitor<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for EntriesVisitor<T> {
        type Value = Vec<(&'de str, T)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(key) = map.next_key_seed(KeySeed)? {
                let value = map.next_value::<Object<T>>()?.0;
                if let Some(key) = key {
                    out.push((key, value));
                }
            }
            Ok(out)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            ScalarVisitor.visit_seq(seq).map(|_| Vec::new())
        }
        every_other_value_is!(Vec::new());
    }
    d.deserialize_any(EntriesVisitor(PhantomData))
}

/// A map key, borrowed when the deserializer lends it for `'de`.
use StrSeed as KeySeed;

/// `T` from an object, `T::default()` from any other value.
struct Object<T>(T);

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                ScalarVisitor.visit_seq(seq).map(|_| Object(T::default()))
            }
            every_other_value_is!(Object(T::default()));
        }
        d.deserialize_any(ObjectVisitor(PhantomData))
    }
}

/// The elements of an array, each read as `T`; no elements from any other
/// value.
struct List<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(SeqAccessDeserializer::new(seq)).map(List)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ScalarVisitor.visit_map(map).map(|_| List(Vec::new()))
            }
            every_other_value_is!(List(Vec::new()));
        }
        d.deserialize_any(ListVisitor(PhantomData))
    }
}

/// A string, or the string member `member` of an object (codex spells
/// some values both ways); absent otherwise.
pub(crate) fn str_or_member<'de, D: Deserializer<'de>>(
    d: D,
    member: &'static str,
) -> Result<Option<&'de str>, D::Error> {
    d.deserialize_any(StrOrMember(member))
}

struct StrOrMember(&'static str);

impl<'de> Visitor<'de> for StrOrMember {
    type Value = Option<&'de str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if key == Some(self.0) {
                found = map.next_value_seed(StrSeed)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ScalarVisitor.visit_seq(seq).map(|_| None)
    }
    every_other_value_is!(None);
}

struct StrSeed;

impl<'de> serde::de::DeserializeSeed<'de> for StrSeed {
    type Value = Option<&'de str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        str(d)
    }
}

/// A text part: a string, or an object's string `text`.
struct TextPart<'de>(Option<&'de str>);

impl<'de> Deserialize<'de> for TextPart<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        str_or_member(d, "text").map(TextPart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, bound(deserialize = "'de: 'a"))]
    struct Sample<'a> {
        #[serde(deserialize_with = "str")]
        name: Option<&'a str>,
        #[serde(deserialize_with = "u64")]
        count: Option<u64>,
        #[serde(deserialize_with = "i64")]
        code: Option<i64>,
        #[serde(deserialize_with = "bool")]
        flag: Option<bool>,
        #[serde(deserialize_with = "tag")]
        kind: Option<Kind>,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase")]
    enum Kind {
        Known,
        #[serde(other)]
        Unknown,
    }

    #[test]
    fn scalars_of_the_right_type_are_read() {
        let v = json!({"name": "n", "count": 3, "code": -2, "flag": true, "kind": "known"});
        assert_eq!(
            read::<Sample>(&v),
            Sample {
                name: Some("n"),
                count: Some(3),
                code: Some(-2),
                flag: Some(true),
                kind: Some(Kind::Known),
            }
        );
    }

    #[test]
    fn scalars_of_the_wrong_type_or_range_read_as_absent() {
        let v = json!({"name": 1, "count": -1, "code": u64::MAX, "flag": "true", "kind": {}});
        assert_eq!(read::<Sample>(&v), Sample::default());
        let v = json!({"count": 1.5, "code": 2.0, "kind": "brandNew"});
        assert_eq!(
            read::<Sample>(&v),
            Sample {
                kind: Some(Kind::Unknown),
                ..Sample::default()
            }
        );
    }

    #[test]
    fn anything_but_an_object_reads_as_the_default() {
        for v in [
            json!(null),
            json!(1),
            json!("s"),
            json!(["n", 3]),
            json!(true),
        ] {
            assert_eq!(read::<Sample>(&v), Sample::default(), "{v}");
        }
    }
}
