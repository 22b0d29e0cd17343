//! Random-access byte sources: files (positional reads, no shared cursor, so one open file
//! serves several readers), in-memory buffers and windows into either.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

/// An owned, shareable blob (a duplicated file handle, a window into one), for readers
/// that need `'static` storage (the HDF5 reader).
pub type SharedBlob = Arc<dyn Blob + Send>;

/// A random-access, read-only byte source of known length.
pub trait Blob: Sync {
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads at most `buf.len()` bytes at `pos`; returns 0 at or past the end.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// An owned handle on the same bytes when that is cheap (an open file is duplicated,
    /// a window of a file stays a window); `None` for borrowed memory.
    fn share(&self) -> Option<SharedBlob> {
        None
    }
}

impl Blob for File {
    fn len(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
    #[cfg(unix)]
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, pos)
    }
    #[cfg(windows)]
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(self, buf, pos)
    }
    fn share(&self) -> Option<SharedBlob> {
        self.try_clone().ok().map(|f| Arc::new(f) as SharedBlob)
    }
}

fn slice_read_at(s: &[u8], pos: u64, buf: &mut [u8]) -> usize {
    let Some(src) = usize::try_from(pos).ok().and_then(|p| s.get(p..)) else {
        return 0;
    };
    let n = src.len().min(buf.len());
    buf[..n].copy_from_slice(&src[..n]);
    n
}

impl Blob for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(slice_read_at(self, pos, buf))
    }
}

impl Blob for Vec<u8> {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(slice_read_at(self, pos, buf))
    }
}

/// A window `[off, off + len)` of another blob (a stored zip member, a tar member).
pub struct Sub<'a> {
    inner: &'a dyn Blob,
    off: u64,
    len: u64,
}

impl<'a> Sub<'a> {
    /// Window of `inner`, clipped to its end.
    pub fn new(inner: &'a dyn Blob, off: u64, len: u64) -> Self {
        let len = len.min(inner.len().saturating_sub(off));
        Sub { inner, off, len }
    }
}

impl Blob for Sub<'_> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        if pos >= self.len {
            return Ok(0);
        }
        let n = usize::try_from(self.len - pos)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.inner.read_at(self.off + pos, &mut buf[..n])
    }
    fn share(&self) -> Option<SharedBlob> {
        let inner = self.inner.share()?;
        Some(Arc::new(OwnedSub {
            inner,
            off: self.off,
            len: self.len,
        }))
    }
}

/// [`Sub`] over a [`SharedBlob`].
struct OwnedSub {
    inner: SharedBlob,
    off: u64,
    len: u64,
}

impl Blob for OwnedSub {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        Sub::new(&*self.inner, self.off, self.len).read_at(pos, buf)
    }
    fn share(&self) -> Option<SharedBlob> {
        Some(Arc::new(OwnedSub {
            inner: self.inner.clone(),
            off: self.off,
            len: self.len,
        }))
    }
}

/// Reads exactly `buf.len()` bytes at `pos`.
///
/// # Errors
/// `UnexpectedEof` when the blob ends first, or the underlying error.
pub fn read_exact_at(b: &dyn Blob, mut pos: u64, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match b.read_at(pos, buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                pos += n as u64;
                buf = &mut buf[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads up to `n` bytes at `pos` (fewer at the end of the blob).
///
/// # Errors
/// The underlying I/O error.
pub fn read_upto(b: &dyn Blob, pos: u64, n: usize) -> io::Result<Vec<u8>> {
    let avail = usize::try_from(b.len().saturating_sub(pos)).unwrap_or(usize::MAX);
    let mut v = vec![0u8; n.min(avail)];
    read_exact_at(b, pos, &mut v)?;
    Ok(v)
}

/// Sequential [`Read`] over `[pos, end)` of a blob.
pub struct BlobReader<'a> {
    b: &'a dyn Blob,
    pos: u64,
    end: u64,
}

impl<'a> BlobReader<'a> {
    /// Reader over `[pos, pos + len)`, clipped to the blob.
    pub fn new(b: &'a dyn Blob, pos: u64, len: u64) -> Self {
        let end = pos.saturating_add(len).min(b.len());
        BlobReader { b, pos, end }
    }
    /// Reader over the whole blob.
    pub fn whole(b: &'a dyn Blob) -> Self {
        Self::new(b, 0, b.len())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.end {
            return Ok(0);
        }
        let n = usize::try_from(self.end - self.pos)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let got = self.b.read_at(self.pos, &mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

/// Reads at most `limit` bytes from `r` into memory; `Ok(None)` when the stream is longer.
///
/// # Errors
/// The underlying I/O error.
pub fn read_bounded(r: &mut dyn Read, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut v = Vec::new();
    r.take(limit.saturating_add(1)).read_to_end(&mut v)?;
    if v.len() as u64 > limit {
        Ok(None)
    } else {
        Ok(Some(v))
    }
}
