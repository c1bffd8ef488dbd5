//! The settings vocabulary every front end shares: how sizes and durations are written, and
//! the one error that names the setting at fault.
//!
//! Owns [`Size`] (`1048576`, `"64MiB"`, `"512KB"`, `"1G"`), [`Span`] (`"500ms"`, `"30s"`,
//! `"1h"`), [`Setting`] (a value as written, whose mistake is reported when its section is
//! resolved, so the error can name the key) and [`SettingError`]. It reads no file and knows
//! no section: each front end resolves its own sections with these (the proxy's
//! `vanish.toml`, the Redis store's `[redis]`, the key rules' `ttl` and `grace`).
//!
//! ```
//! use vanish_engine::settings::{Setting, Size, Span};
//! let capacity: Size = "64MiB".parse().unwrap();
//! assert_eq!(capacity.bytes(), 64 << 20);
//! assert_eq!("1h".parse::<Span>().unwrap().duration().as_secs(), 3600);
//! let written: Setting<Size> = "12XB".into();
//! assert_eq!(
//!     written.get("limits.max_header_bytes").unwrap_err().to_string(),
//!     "limits.max_header_bytes: \"12XB\" is not a size such as \"64MiB\" (unknown unit \"XB\")"
//! );
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A setting that cannot be used: which key (`limits.max_header_bytes`, `redis.timeout`,
/// `--memory-capacity`), and why. Displayed as `"<key>: <reason>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The setting, as the user wrote it: `section.key`, `section.key[index]`, or a flag.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl SettingError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        SettingError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

impl std::error::Error for SettingError {}

/// How one kind of value is written in settings: a text, and for some kinds an integer.
pub trait Spelling: Sized {
    /// What it resolves to (bytes, a duration).
    type Value;
    /// What a value of this kind looks like, for errors: `a size such as "64MiB"`.
    const EXPECTED: &'static str;
    /// Reads a text; the error is the reason only (without the key).
    fn from_text(text: &str) -> Result<Self, String>;
    /// Reads an integer (by default refused: the unit must be written).
    fn from_integer(n: i64) -> Result<Self, String> {
        Err(format!("{n} is not {} (write the unit)", Self::EXPECTED))
    }
    /// The resolved value.
    fn value(&self) -> Self::Value;
}

/// A number of bytes: an integer (`1048576`) or a text with a unit (`"64MiB"`).
///
/// Units: `B`, `KiB`/`K`, `MiB`/`M`, `GiB`/`G` (powers of two) and `KB`, `MB`, `GB` (powers
/// of ten), in any case, with or without a space after the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(u64);

impl Size {
    /// A size of `n` bytes.
    pub const fn from_bytes(n: u64) -> Self {
        Size(n)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl Spelling for Size {
    type Value = u64;
    const EXPECTED: &'static str = "a size such as \"64MiB\"";

    fn from_text(text: &str) -> Result<Self, String> {
        let not_a_size = |detail: String| format!("{text:?} is not {}{detail}", Self::EXPECTED);
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| not_a_size(String::new()))?;
        let unit = unit.trim();
        let mult: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" => 1 << 10,
            "kb" => 1000,
            "m" | "mib" => 1 << 20,
            "mb" => 1_000_000,
            "g" | "gib" => 1 << 30,
            "gb" => 1_000_000_000,
            _ => return Err(not_a_size(format!(" (unknown unit {unit:?})"))),
        };
        n.checked_mul(mult)
            .map(Size)
            .ok_or_else(|| format!("{text:?} is too large"))
    }

    fn from_integer(n: i64) -> Result<Self, String> {
        u64::try_from(n)
            .map(Size)
            .map_err(|_| format!("{n} is not {}", Self::EXPECTED))
    }

    fn value(&self) -> u64 {
        self.0
    }
}

/// A length of time, written with its unit: `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"1h 30m"`
/// (`humantime` syntax), or `"0"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(Duration);

impl Span {
    /// The duration.
    pub const fn duration(self) -> Duration {
        self.0
    }
}

impl From<Duration> for Span {
    fn from(d: Duration) -> Self {
        Span(d)
    }
}

impl Spelling for Span {
    type Value = Duration;
    const EXPECTED: &'static str = "a duration such as \"30s\"";

    fn from_text(text: &str) -> Result<Self, String> {
        humantime::parse_duration(text.trim())
            .map(Span)
            .map_err(|e| format!("{text:?} is not {} ({e})", Self::EXPECTED))
    }

    fn value(&self) -> Duration {
        self.0
    }
}

macro_rules! spelled {
    ($t:ty) => {
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$t as Spelling>::from_text(s)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(Written::<$t>(PhantomData))?
                    .map_err(de::Error::custom)
            }
        }
    };
}

spelled!(Size);
spelled!(Span);

/// A setting as written in a file: read when the file is, but a value that does not fit its
/// kind (`capacity = "lots"`) is reported by [`Setting::get`], with the key, when its section
/// is resolved. Any TOML/JSON value deserialises; a wrong one becomes that error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T>(Result<T, String>);

impl<T: Spelling> Setting<T> {
    /// The value, or an error naming `key`.
    pub fn get(&self, key: &str) -> Result<T::Value, SettingError> {
        self.0
            .as_ref()
            .map(Spelling::value)
            .map_err(|reason| SettingError::new(key, reason.clone()))
    }
}

/// The value of an optional setting: `default` when it is not written.
pub fn get<T: Spelling>(
    written: &Option<Setting<T>>,
    key: &str,
    default: T::Value,
) -> Result<T::Value, SettingError> {
    written.as_ref().map_or(Ok(default), |s| s.get(key))
}

impl<T: Spelling> From<&str> for Setting<T> {
    fn from(text: &str) -> Self {
        Setting(T::from_text(text))
    }
}

impl<'de, T: Spelling> Deserialize<'de> for Setting<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Written::<T>(PhantomData)).map(Setting)
    }
}

/// Reads any value as a `T`, the outcome (not the deserialiser) carrying a misfit.
struct Written<T>(PhantomData<T>);

impl<T: Spelling> Written<T> {
    fn other(kind: &str) -> Result<T, String> {
        Err(format!("expected {}, found {kind}", T::EXPECTED))
    }
}

impl<'de, T: Spelling> Visitor<'de> for Written<T> {
    type Value = Result<T, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(T::from_text(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(T::from_integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v)
            .map_err(|_| format!("{v} is too large"))
            .and_then(T::from_integer))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Self::other("a boolean"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Self::other("a fractional number"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::other("a list"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::other("a table"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(s: &str) -> Result<u64, String> {
        Size::from_text(s).map(Size::bytes)
    }

    #[test]
    fn sizes() {
        assert_eq!(size("1024"), Ok(1024));
        assert_eq!(size("64KiB"), Ok(64 << 10));
        assert_eq!(size("512KB"), Ok(512_000));
        assert_eq!(size("1G"), Ok(1 << 30));
        assert_eq!(size("10 mb"), Ok(10_000_000));
        assert_eq!(size("256MiB"), Ok(256 << 20));
        assert_eq!(
            size("ten").unwrap_err(),
            "\"ten\" is not a size such as \"64MiB\""
        );
        assert_eq!(
            size("5 parsecs").unwrap_err(),
            "\"5 parsecs\" is not a size such as \"64MiB\" (unknown unit \"parsecs\")"
        );
        assert!(size("99999999999999GiB").unwrap_err().contains("too large"));
        assert_eq!(Size::from_integer(7), Ok(Size(7)));
        assert!(Size::from_integer(-1).is_err());
    }

    #[test]
    fn spans() {
        let span = |s: &str| Span::from_text(s).map(Span::duration);
        assert_eq!(span("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(span(" 30s"), Ok(Duration::from_secs(30)));
        assert_eq!(span("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(span("0"), Ok(Duration::ZERO));
        assert!(span("soon")
            .unwrap_err()
            .starts_with("\"soon\" is not a duration such as \"30s\" ("));
        assert!(Span::from_integer(30)
            .unwrap_err()
            .contains("write the unit"));
    }

    #[derive(Debug, Deserialize)]
    struct Section {
        size: Option<Setting<Size>>,
        span: Option<Setting<Span>>,
    }

    fn section(json: &str) -> Section {
        serde_json::from_str(json).expect("any value deserialises")
    }

    #[test]
    fn settings_report_misfits_with_their_key() {
        let s = section(r#"{"size": 1024, "span": "2s"}"#);
        assert_eq!(get(&s.size, "a.size", 1), Ok(1024));
        assert_eq!(
            get(&s.span, "a.span", Duration::ZERO),
            Ok(Duration::from_secs(2))
        );
        let s = section(r#"{}"#);
        assert_eq!(get(&s.size, "a.size", 1), Ok(1));
        for (json, error) in [
            (
                r#"{"size": true}"#,
                "a.size: expected a size such as \"64MiB\", found a boolean",
            ),
            (
                r#"{"size": [1, 2]}"#,
                "a.size: expected a size such as \"64MiB\", found a list",
            ),
            (
                r#"{"size": -3}"#,
                "a.size: -3 is not a size such as \"64MiB\"",
            ),
            (
                r#"{"size": "lots"}"#,
                "a.size: \"lots\" is not a size such as \"64MiB\"",
            ),
        ] {
            let e = get(&section(json).size, "a.size", 0).unwrap_err();
            assert_eq!(e.to_string(), error, "{json}");
        }
        let e = get(&section(r#"{"span": 5}"#).span, "a.span", Duration::ZERO).unwrap_err();
        assert_eq!(e.key, "a.span");
    }

    #[test]
    fn sizes_and_spans_deserialise_eagerly() {
        assert_eq!(
            serde_json::from_str::<Size>("\"1G\"").unwrap().bytes(),
            1 << 30
        );
        assert_eq!(serde_json::from_str::<Size>("4096").unwrap().bytes(), 4096);
        let e = serde_json::from_str::<Size>("\"12XB\"").unwrap_err();
        assert!(e.to_string().contains("unknown unit \"XB\""), "{e}");
        let d = serde_json::from_str::<Span>("\"1h\"").unwrap();
        assert_eq!(d.duration(), Duration::from_secs(3600));
    }
}
