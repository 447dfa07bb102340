//! The NASDAQ protocols' alpha field, shared by the OUCH 5.0 codec
//! (`ouch`) and the ITCH 5.0 codec (`marketdata::itch`): `N` bytes of
//! printable ASCII, left-justified and padded on the right with spaces.

use std::fmt;

/// Printable ASCII, space included.
pub fn is_printable(byte: u8) -> bool {
    (0x20..=0x7e).contains(&byte)
}

/// An alpha field of `N` bytes: printable ASCII, space-padded on the right.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Alpha<const N: usize>([u8; N]);

impl<const N: usize> Alpha<N> {
    /// All spaces (e.g. "all symbols" in an OUCH Mass Cancel Request).
    pub const BLANK: Self = Self([b' '; N]);

    /// Pads `text` with spaces; `None` if it is longer than `N` bytes or not
    /// printable ASCII.
    ///
    /// ```
    /// use wire::alpha::Alpha;
    /// let symbol = Alpha::<8>::new("ACME").unwrap();
    /// assert_eq!(symbol.as_bytes(), b"ACME    ");
    /// assert_eq!(symbol.trimmed(), "ACME");
    /// assert!(Alpha::<8>::new("TOOLONGSYM").is_none());
    /// ```
    pub fn new(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() > N || !bytes.iter().all(|&b| is_printable(b)) {
            return None;
        }
        let mut padded = [b' '; N];
        padded[..bytes.len()].copy_from_slice(bytes);
        Some(Self(padded))
    }

    /// The field as received; `None` unless every byte is printable ASCII
    /// (each codec turns that into its own error, naming the field).
    pub fn from_bytes(bytes: [u8; N]) -> Option<Self> {
        bytes
            .iter()
            .all(|&b| is_printable(b))
            .then_some(Self(bytes))
    }

    /// The raw bytes, padding included.
    pub fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }

    /// The text without its right padding.
    pub fn trimmed(&self) -> &str {
        // Invariant: construction admits printable ASCII only, which is UTF-8.
        core::str::from_utf8(&self.0)
            .unwrap_or("")
            .trim_end_matches(' ')
    }
}

impl<const N: usize> Default for Alpha<N> {
    fn default() -> Self {
        Self::BLANK
    }
}

impl<const N: usize> fmt::Debug for Alpha<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.trimmed())
    }
}
