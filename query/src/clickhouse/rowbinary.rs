//! ClickHouse's `RowBinary` format, written and read by hand: integers
//! little-endian, strings as a LEB128 length and their bytes. It carries a
//! raw input byte for byte (no escaping, unlike TSV), every server version
//! Ticks supports (18.16 on) speaks it, and its whole grammar for the
//! column types Ticks uses is the few functions here, where a client crate
//! would bring an async runtime or need a newer server.

/// Appends `RowBinary` values to a buffer.
#[derive(Default)]
pub struct Rows {
    bytes: Vec<u8>,
}

impl Rows {
    /// An empty buffer.
    pub fn new() -> Rows {
        Rows::default()
    }
    /// A `UInt8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }
    /// A `UInt64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// An `Int64`.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A `String` (any bytes).
    pub fn string(&mut self, v: &[u8]) -> &mut Self {
        self.varint(v.len() as u64);
        self.bytes.extend_from_slice(v);
        self
    }
    /// A `Nullable(String)`.
    pub fn opt_string(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            None => self.u8(1),
            Some(v) => self.u8(0).string(v.as_bytes()),
        }
    }
    /// A `Nullable(Int64)`.
    pub fn opt_i64(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            None => self.u8(1),
            Some(v) => self.u8(0).i64(v),
        }
    }
    /// An `Array(String)`.
    pub fn strings(&mut self, items: &[String]) -> &mut Self {
        self.varint(items.len() as u64);
        for item in items {
            self.string(item.as_bytes());
        }
        self
    }
    fn varint(&mut self, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.bytes.push(byte);
                break;
            }
            self.bytes.push(byte | 0x80);
        }
    }
    /// The encoded rows.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Reads `RowBinary` values from an answer, in the order of its columns.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

/// An answer shorter than its columns say: the server and Ticks disagree
/// on the columns' types.
#[derive(Debug, thiserror::Error)]
#[error("a RowBinary answer ended inside a value")]
pub struct Truncated;

/// Every row of an answer of one `String` column (`SELECT key ...
/// FORMAT RowBinary`), in its order.
pub fn read_strings(bytes: &[u8]) -> Result<Vec<String>, Truncated> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_done() {
        out.push(String::from_utf8_lossy(r.string()?).into_owned());
    }
    Ok(out)
}

impl<'a> Reader<'a> {
    /// A reader of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }
    /// True when every row was read.
    pub fn is_done(&self) -> bool {
        self.bytes.is_empty()
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        if self.bytes.len() < n {
            return Err(Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    /// A `UInt8`.
    pub fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(self.take(1)?[0])
    }
    /// A `UInt64`.
    pub fn u64(&mut self) -> Result<u64, Truncated> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| Truncated)?))
    }
    /// An `Int64`.
    pub fn i64(&mut self) -> Result<i64, Truncated> {
        let b = self.take(8)?;
        Ok(i64::from_le_bytes(b.try_into().map_err(|_| Truncated)?))
    }
    /// A `String`.
    pub fn string(&mut self) -> Result<&'a [u8], Truncated> {
        let n = self.u64_varint()?;
        self.take(usize::try_from(n).map_err(|_| Truncated)?)
    }
    /// A LEB128 number: a string's length, an array's size.
    pub fn u64_varint(&mut self) -> Result<u64, Truncated> {
        let mut n: u64 = 0;
        let mut shift = 0;
        loop {
            let byte = self.u8()?;
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(Truncated);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_written() {
        let long = vec![0xffu8; 300];
        let mut rows = Rows::new();
        rows.u64(u64::MAX).i64(-5).string(b"").string(&long).u8(7);
        let mut r = Reader::new(rows.as_bytes());
        assert_eq!(r.u64().expect("reads back"), u64::MAX);
        assert_eq!(r.i64().expect("reads back"), -5);
        assert_eq!(r.string().expect("reads back"), b"");
        assert_eq!(r.string().expect("reads back"), &long[..]);
        assert_eq!(r.u8().expect("reads back"), 7);
        assert!(r.is_done());
    }

    #[test]
    fn a_length_is_leb128() {
        let mut rows = Rows::new();
        rows.string(&[b'x'; 300]);
        assert_eq!(&rows.as_bytes()[..2], &[0xac, 0x02]);
    }

    #[test]
    fn a_cut_answer_is_an_error_not_a_panic() {
        let mut rows = Rows::new();
        rows.string(b"hello");
        let cut = &rows.as_bytes()[..3];
        assert!(Reader::new(cut).string().is_err());
        assert!(Reader::new(&[1, 2]).u64().is_err());
    }
}
