//! `send-paths`: how fast this machine moves a file's bytes to a TCP socket on loopback, path by
//! path, for decision 0008 (issue 15: "zero copy where it wins").
//!
//! Owns: one test file (written once, removed at the end), a receiver thread that `recv()`s into
//! a 1 MiB buffer and discards, and the paths a Fetch response could take from Skua's memory
//! cache or from a segment file to the socket: `writev` of cache slices, `pread`+`writev`,
//! io_uring reads then sends, `sendfile`, `splice`, and io_uring sends from registered buffers
//! (plain and zero-copy). Each path sends the whole file in response-sized chunks (a 16-partition
//! fetch of 1 MiB each by default) made of partition-sized pieces. Hot runs read the file into
//! the page cache just before (DAMON pages idle cache out within a minute here); cold runs drop
//! the page cache first. It reports GiB/s and CPU seconds per GiB of the sending and receiving
//! threads and of the whole process (io_uring workers included), and the CPU used by other
//! processes meanwhile. Must not know Skua's code: it reproduces the shapes of netd's fetch path
//! with plain system calls, so the numbers compare the kernel's paths, not our wrappers.
//!
//! Runs on the main thread (sender) and one receiver thread per measurement.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use serde_json::{json, Value};
use skua_bench::{load_average, RunFacts};

const HELP: &str = "send-paths: file-to-socket paths on loopback, hot and cold (issue 15, decision 0008)

USAGE: send-paths [--dir DIR] [--file-mib N] [--chunks-mib LIST] [--piece-kib N] [--rounds N]
                  [--paths LIST] [--temperatures LIST] [--results DIR] [--load-max X]
                  [--verify] [--quick]

  --dir DIR            where the test file's temporary directory goes (default .; the same file
                       system as Skua's segments if you want cold numbers that mean something)
  --file-mib N         size of the file sent by every measurement (default 1024, at most 8192)
  --chunks-mib LIST    response sizes to sweep, comma list (default 16,1)
  --piece-kib N        one partition's share of a response: iovec, read and registered-buffer
                       size (default 1024)
  --rounds N           measurements per path, chunk size and temperature (default 5, at most 50)
  --paths LIST         comma list (default all): writev-memory, uring-send-memory,
                       uring-write-fixed, uring-send-zc, pread-writev-fresh, pread-writev-reused,
                       uring-read-send, sendfile, splice, pread-only
  --temperatures LIST  hot,cold (default both; cold drops the page cache: needs root)
  --results DIR        where send-paths.json and send-paths.md go
                       (default results/<date>-<commit>/send-paths)
  --load-max X         wait (30 s polls, at most 20 minutes in all) while the 1-minute load is
                       above X and other processes use more than a quarter core (default 1.0)
  --verify             the receiver checksums what it gets and the run fails on a mismatch
                       (costs receiver CPU: not for measuring)
  --quick              64 MiB file, one round (smoke test)

Paths: *-memory, uring-write-fixed and uring-send-zc send bytes already in memory (Skua's cache);
the others read the file (hot: page cache; cold: disk). pread-only reads without a socket: the
page cache's (hot) or the disk's (cold) rate.";

/// The receiver reads with this buffer, like a consumer's socket read.
const RECEIVE_BUFFER_BYTES: usize = 1024 * 1024;
/// A response larger than this is refused (its pieces are one io_uring chain).
const CHUNK_BYTES_MAX: u64 = 128 * 1024 * 1024;
/// The test file is at most this large (it is also held in memory for the memory paths).
const FILE_BYTES_MAX: u64 = 8 * 1024 * 1024 * 1024;
/// Pieces per io_uring chain and registered buffers: below the kernel's limits (16,384 buffers).
const PIECES_PER_CHUNK_MAX: u64 = 128;
const REGISTERED_BUFFERS_MAX: u64 = 16_384;
const RING_ENTRIES: u32 = 256;
const ROUNDS_MAX: usize = 50;
/// The pipe between file and socket for `splice` (the default pipe-max-size; root may go above).
const PIPE_BYTES_WANTED: i32 = 1024 * 1024;
const LOAD_POLL_SECONDS: u64 = 30;
const LOAD_WAIT_SECONDS_MAX: u64 = 20 * 60;
/// Other processes' CPU (in cores, over a one-second probe) above which the machine is busy.
const FOREIGN_CORES_MAX: f64 = 0.25;
/// Room left on the file system beyond the test file.
const SPARE_DISK_BYTES: u64 = 1024 * 1024 * 1024;
/// From the kernel's io_uring.h (the io-uring crate keeps its `sys` module private): ask a
/// zero-copy send's notification to tell whether the kernel copied the data after all, and the
/// bit of the notification's result that says it did.
const SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
const NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;
const GIB: f64 = (1u64 << 30) as f64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SendPath {
    WritevMemory,
    UringSendMemory,
    UringWriteFixed,
    UringSendZc,
    PreadWritevFresh,
    PreadWritevReused,
    UringReadSend,
    Sendfile,
    Splice,
    PreadOnly,
}

impl SendPath {
    const ALL: [SendPath; 10] = [
        SendPath::WritevMemory,
        SendPath::UringSendMemory,
        SendPath::UringWriteFixed,
        SendPath::UringSendZc,
        SendPath::PreadWritevFresh,
        SendPath::PreadWritevReused,
        SendPath::UringReadSend,
        SendPath::Sendfile,
        SendPath::Splice,
        SendPath::PreadOnly,
    ];

    fn name(self) -> &'static str {
        match self {
            SendPath::WritevMemory => "writev-memory",
            SendPath::UringSendMemory => "uring-send-memory",
            SendPath::UringWriteFixed => "uring-write-fixed",
            SendPath::UringSendZc => "uring-send-zc",
            SendPath::PreadWritevFresh => "pread-writev-fresh",
            SendPath::PreadWritevReused => "pread-writev-reused",
            SendPath::UringReadSend => "uring-read-send",
            SendPath::Sendfile => "sendfile",
            SendPath::Splice => "splice",
            SendPath::PreadOnly => "pread-only",
        }
    }

    fn parse(name: &str) -> Option<SendPath> {
        SendPath::ALL.into_iter().find(|path| path.name() == name)
    }

    /// The bytes come from the file (page cache or disk), not from memory the process holds.
    fn reads_file(self) -> bool {
        !matches!(
            self,
            SendPath::WritevMemory | SendPath::UringSendMemory | SendPath::UringWriteFixed | SendPath::UringSendZc
        )
    }

    fn uses_socket(self) -> bool {
        self != SendPath::PreadOnly
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Temperature {
    Hot,
    Cold,
}

impl Temperature {
    fn name(self) -> &'static str {
        match self {
            Temperature::Hot => "hot",
            Temperature::Cold => "cold",
        }
    }
}

#[derive(Clone, Debug)]
struct Options {
    dir: PathBuf,
    file_bytes: u64,
    chunk_bytes: Vec<u64>,
    piece_bytes: u64,
    rounds: usize,
    paths: Vec<SendPath>,
    temperatures: Vec<Temperature>,
    results: Option<PathBuf>,
    load_max: f64,
    verify: bool,
}

fn parse_options(args: impl IntoIterator<Item = String>) -> anyhow::Result<Options> {
    let mib = 1024 * 1024;
    let mut options = Options {
        dir: PathBuf::from("."),
        file_bytes: 1024 * mib,
        chunk_bytes: vec![16 * mib, mib],
        piece_bytes: mib,
        rounds: 5,
        paths: SendPath::ALL.to_vec(),
        temperatures: vec![Temperature::Hot, Temperature::Cold],
        results: None,
        load_max: 1.0,
        verify: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            "--dir" => options.dir = PathBuf::from(value("--dir")?),
            "--file-mib" => options.file_bytes = value("--file-mib")?.parse::<u64>().context("--file-mib")? * mib,
            "--chunks-mib" => {
                options.chunk_bytes = value("--chunks-mib")?
                    .split(',')
                    .map(|text| text.parse::<u64>().map(|count| count * mib))
                    .collect::<Result<_, _>>()
                    .context("--chunks-mib: a comma list of numbers")?
            }
            "--piece-kib" => options.piece_bytes = value("--piece-kib")?.parse::<u64>().context("--piece-kib")? * 1024,
            "--rounds" => options.rounds = value("--rounds")?.parse().context("--rounds")?,
            "--paths" => {
                options.paths = value("--paths")?
                    .split(',')
                    .map(|name| SendPath::parse(name).with_context(|| format!("unknown path {name:?}")))
                    .collect::<anyhow::Result<_>>()?
            }
            "--temperatures" => {
                options.temperatures = value("--temperatures")?
                    .split(',')
                    .map(|name| match name {
                        "hot" => Ok(Temperature::Hot),
                        "cold" => Ok(Temperature::Cold),
                        other => bail!("unknown temperature {other:?}"),
                    })
                    .collect::<anyhow::Result<_>>()?
            }
            "--results" => options.results = Some(PathBuf::from(value("--results")?)),
            "--load-max" => options.load_max = value("--load-max")?.parse().context("--load-max")?,
            "--verify" => options.verify = true,
            "--quick" => {
                options.file_bytes = 64 * mib;
                options.rounds = 1;
            }
            other => bail!("unknown argument {other:?}; see --help"),
        }
    }
    if options.file_bytes == 0 || options.file_bytes > FILE_BYTES_MAX {
        bail!("--file-mib: between 1 and {}", FILE_BYTES_MAX / mib);
    }
    if options.rounds == 0 || options.rounds > ROUNDS_MAX {
        bail!("--rounds: between 1 and {ROUNDS_MAX}");
    }
    if options.piece_bytes == 0 || options.file_bytes.div_ceil(options.piece_bytes) > REGISTERED_BUFFERS_MAX {
        bail!("--piece-kib: at least 1, and at most {REGISTERED_BUFFERS_MAX} pieces in the file");
    }
    for &chunk in &options.chunk_bytes {
        if chunk == 0 || chunk > CHUNK_BYTES_MAX || chunk % options.piece_bytes != 0 {
            bail!("--chunks-mib: each between 1 and {} MiB, a multiple of the piece", CHUNK_BYTES_MAX / mib);
        }
        if chunk / options.piece_bytes > PIECES_PER_CHUNK_MAX {
            bail!("a response of at most {PIECES_PER_CHUNK_MAX} pieces");
        }
    }
    Ok(options)
}

/// The test file, its bytes in memory (the "cache" of the memory paths) and their checksum.
#[derive(Debug)]
struct Source {
    file: File,
    memory: Vec<u8>,
    checksum: u64,
}

impl Source {
    fn file_bytes(&self) -> u64 {
        self.memory.len() as u64
    }
}

/// Removes the test file's directory when the run ends, also on an error.
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// FNV-1a, streamed: the same for any split of the bytes into reads.
#[derive(Clone, Copy, Debug)]
struct Checksum(u64);

impl Checksum {
    fn new() -> Checksum {
        Checksum(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Free bytes on the file system holding `dir` (`df`), if it can be told.
fn free_bytes(dir: &Path) -> Option<u64> {
    let output = std::process::Command::new("df").args(["--output=avail", "-B1"]).arg(dir).output().ok()?;
    String::from_utf8_lossy(&output.stdout).lines().nth(1)?.trim().parse().ok()
}

/// Writes `file_bytes` of incompressible bytes to `dir/data` (buffered, then fsync).
fn create_source(dir: &Path, file_bytes: u64) -> anyhow::Result<Source> {
    let length = usize::try_from(file_bytes).context("file size beyond memory")?;
    let mut memory = vec![0u8; length];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for word in memory.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes = state.to_le_bytes();
        word.copy_from_slice(&bytes[..word.len()]);
    }
    let mut checksum = Checksum::new();
    checksum.update(&memory);
    let file_path = dir.join("data");
    let mut file = File::create(&file_path).with_context(|| format!("create {}", file_path.display()))?;
    file.write_all(&memory).context("write the test file")?;
    file.sync_all().context("fsync the test file")?;
    drop(file);
    let file = File::open(&file_path).context("open the test file")?;
    Ok(Source { file, memory, checksum: checksum.0 })
}

fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes one rusage into the zeroed value we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return f64::NAN;
    }
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The machine's busy CPU seconds so far (all cores, /proc/stat; iowait counts as idle).
fn machine_busy_seconds() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else { return f64::NAN };
    let Some(line) = text.lines().find(|line| line.starts_with("cpu ")) else { return f64::NAN };
    let fields: Vec<f64> = line.split_whitespace().skip(1).filter_map(|field| field.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let busy: f64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&index| fields.get(index)).sum();
    // SAFETY: sysconf has no memory effects.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    busy / ticks_per_second
}

/// Cores other processes kept busy over one second of our idling.
fn foreign_cores_probe() -> f64 {
    let machine = machine_busy_seconds();
    let ours = cpu_seconds(libc::RUSAGE_SELF);
    std::thread::sleep(Duration::from_secs(1));
    (machine_busy_seconds() - machine) - (cpu_seconds(libc::RUSAGE_SELF) - ours)
}

fn load_one_minute() -> f64 {
    load_average().split_whitespace().next().and_then(|text| text.parse().ok()).unwrap_or(f64::NAN)
}

/// Waits while the machine is busy: the 1-minute load above `load_max` and, since that average
/// also counts our own threads of the last minute, other processes busy in a one-second probe.
/// Returns the seconds waited; `budget_seconds` shrinks by them.
fn wait_for_quiet(load_max: f64, budget_seconds: &mut u64) -> u64 {
    let mut waited = 0;
    loop {
        let load = load_one_minute();
        if load <= load_max {
            return waited;
        }
        let foreign_cores = foreign_cores_probe();
        if foreign_cores <= FOREIGN_CORES_MAX || *budget_seconds < LOAD_POLL_SECONDS {
            return waited;
        }
        eprintln!(
            "send-paths: load {} and {foreign_cores:.2} cores used by others: waiting {LOAD_POLL_SECONDS} s",
            load_average()
        );
        std::thread::sleep(Duration::from_secs(LOAD_POLL_SECONDS));
        waited += LOAD_POLL_SECONDS;
        *budget_seconds -= LOAD_POLL_SECONDS;
    }
}

/// Fraction of the file's pages in the page cache (mincore on a mapping of it).
fn resident_fraction(source: &Source) -> anyhow::Result<f64> {
    let length = source.memory.len();
    // SAFETY: sysconf has no memory effects.
    let page_bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    // SAFETY: a fresh read-only shared mapping of our open file, unmapped below; nothing else
    // refers to it.
    let address = unsafe {
        libc::mmap(std::ptr::null_mut(), length, libc::PROT_READ, libc::MAP_SHARED, source.file.as_raw_fd(), 0)
    };
    if address == libc::MAP_FAILED {
        return Err(io::Error::last_os_error()).context("mmap for mincore");
    }
    let mut vector = vec![0u8; length.div_ceil(page_bytes)];
    // SAFETY: `vector` has one byte per page of the mapping.
    let outcome = unsafe { libc::mincore(address, length, vector.as_mut_ptr()) };
    let error = io::Error::last_os_error();
    // SAFETY: the mapping made above, of this length.
    unsafe { libc::munmap(address, length) };
    if outcome != 0 {
        return Err(error).context("mincore");
    }
    Ok(vector.iter().filter(|&&page| page & 1 == 1).count() as f64 / vector.len() as f64)
}

/// Hot: read the whole file once (into the page cache). Cold: sync and drop the page cache
/// (falling back to POSIX_FADV_DONTNEED on this file when /proc/sys/vm/drop_caches refuses).
fn prepare(source: &Source, temperature: Temperature) -> anyhow::Result<f64> {
    match temperature {
        Temperature::Hot => {
            let mut buffer = vec![0u8; 16 * 1024 * 1024];
            let mut offset = 0u64;
            while offset < source.file_bytes() {
                let length = (source.file_bytes() - offset).min(buffer.len() as u64) as usize;
                pread_exact(source.file.as_raw_fd(), buffer.as_mut_ptr(), length, offset)?;
                offset += length as u64;
            }
        }
        Temperature::Cold => {
            // SAFETY: sync has no memory effects.
            unsafe { libc::sync() };
            if std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_err() {
                // SAFETY: advice on our own open file.
                unsafe { libc::posix_fadvise(source.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            }
        }
    }
    resident_fraction(source)
}

fn pread_exact(fd: RawFd, buffer: *mut u8, length: usize, offset: u64) -> io::Result<()> {
    let mut done = 0usize;
    while done < length {
        // SAFETY: the caller's buffer holds `length` writable bytes; we write within them.
        let read =
            unsafe { libc::pread(fd, buffer.add(done).cast(), length - done, (offset + done as u64) as libc::off_t) };
        match read {
            0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "pread past the end")),
            read if read < 0 => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            read => done += read as usize,
        }
    }
    Ok(())
}

/// One vectored write of all `slices`, again from where the kernel stopped on a short write.
fn writev_all(fd: RawFd, slices: &[&[u8]]) -> io::Result<()> {
    let mut iovecs: Vec<libc::iovec> =
        slices.iter().map(|slice| libc::iovec { iov_base: slice.as_ptr() as *mut _, iov_len: slice.len() }).collect();
    let mut first = 0usize;
    while first < iovecs.len() {
        let count = (iovecs.len() - first).min(libc::UIO_MAXIOV as usize);
        // SAFETY: the iovecs describe live slices the caller lends us.
        let written = unsafe { libc::writev(fd, iovecs[first..].as_ptr(), count as libc::c_int) };
        if written < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if written == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "writev wrote nothing"));
        }
        let mut left = written as usize;
        while left > 0 && first < iovecs.len() {
            let iovec = &mut iovecs[first];
            if left >= iovec.iov_len {
                left -= iovec.iov_len;
                first += 1;
            } else {
                // SAFETY: advancing within the slice this iovec describes.
                iovec.iov_base = unsafe { iovec.iov_base.cast::<u8>().add(left) }.cast();
                iovec.iov_len -= left;
                left = 0;
            }
        }
    }
    Ok(())
}

fn sendfile_all(socket: RawFd, file: RawFd, offset: u64, length: u64) -> io::Result<()> {
    let mut position = offset as libc::off_t;
    let end = (offset + length) as libc::off_t;
    while position < end {
        // SAFETY: both descriptors are open; `position` is ours.
        let sent = unsafe { libc::sendfile(socket, file, &mut position, (end - position) as usize) };
        match sent {
            0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "sendfile past the end")),
            sent if sent < 0 => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A pipe for `splice`, enlarged to `PIPE_BYTES_WANTED` if the kernel lets us.
#[derive(Debug)]
struct Pipe {
    read: RawFd,
    write: RawFd,
    bytes: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two descriptors into the array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: F_SETPIPE_SZ / F_GETPIPE_SZ on the pipe just made.
        unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, PIPE_BYTES_WANTED) };
        let bytes = unsafe { libc::fcntl(fds[1], libc::F_GETPIPE_SZ) };
        if bytes <= 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Pipe { read: fds[0], write: fds[1], bytes: bytes as usize })
    }

    /// file → pipe → socket, at most the pipe's size at a time.
    fn splice_all(&self, socket: RawFd, file: RawFd, offset: u64, length: u64) -> io::Result<()> {
        let mut position = offset as libc::loff_t;
        let end = (offset + length) as libc::loff_t;
        while position < end {
            let want = ((end - position) as usize).min(self.bytes);
            // SAFETY: open descriptors; `position` is ours.
            let filled = unsafe {
                libc::splice(file, &mut position, self.write, std::ptr::null_mut(), want, libc::SPLICE_F_MOVE)
            };
            if filled <= 0 {
                let error = io::Error::last_os_error();
                if filled < 0 && error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(if filled == 0 {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "splice past the end")
                } else {
                    error
                });
            }
            let mut drained = 0isize;
            while drained < filled {
                // SAFETY: open descriptors; the pipe holds `filled - drained` bytes.
                let sent = unsafe {
                    libc::splice(
                        self.read,
                        std::ptr::null_mut(),
                        socket,
                        std::ptr::null_mut(),
                        (filled - drained) as usize,
                        libc::SPLICE_F_MOVE,
                    )
                };
                if sent <= 0 {
                    let error = io::Error::last_os_error();
                    if sent < 0 && error.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(if sent == 0 {
                        io::Error::new(io::ErrorKind::WriteZero, "splice sent nothing")
                    } else {
                        error
                    });
                }
                drained += sent;
            }
        }
        Ok(())
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: our own descriptors, closed once.
        unsafe {
            libc::close(self.read);
            libc::close(self.write);
        }
    }
}

/// One piece of a send: memory and, for registered buffers, the buffer that holds it.
#[derive(Clone, Copy, Debug)]
struct Piece {
    address: *const u8,
    length: usize,
    buffer_index: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RingSend {
    /// IORING_OP_SEND with MSG_WAITALL (the kernel retries short sends itself).
    Send,
    /// IORING_OP_WRITE_FIXED from a registered buffer.
    WriteFixed,
    /// IORING_OP_SEND_ZC from a registered buffer, MSG_WAITALL, usage reported.
    SendZc,
}

/// What the ring did beyond the bytes: resubmitted short sends, zero-copy notifications and how
/// many of them say the kernel copied after all.
#[derive(Clone, Copy, Debug, Default)]
struct RingCounts {
    resubmits: u64,
    zc_notifications: u64,
    zc_copied: u64,
}

/// The ring of the io_uring paths, with the file's in-memory bytes registered as buffers of one
/// piece each.
struct Rings {
    ring: IoUring,
    registered: bool,
    send_zc: bool,
}

impl std::fmt::Debug for Rings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Rings").field("registered", &self.registered).field("send_zc", &self.send_zc).finish()
    }
}

impl Rings {
    /// The caller keeps `source.memory` alive and unmoved as long as the ring.
    fn new(source: &Source, piece_bytes: u64) -> anyhow::Result<Rings> {
        let ring = IoUring::new(RING_ENTRIES).context("io_uring setup")?;
        let iovecs: Vec<libc::iovec> = source
            .memory
            .chunks(piece_bytes as usize)
            .map(|piece| libc::iovec { iov_base: piece.as_ptr() as *mut _, iov_len: piece.len() })
            .collect();
        // SAFETY: the iovecs cover `source.memory`, which outlives the ring (see above).
        let registered = match unsafe { ring.submitter().register_buffers(&iovecs) } {
            Ok(()) => true,
            Err(error) => {
                eprintln!("send-paths: register_buffers failed ({error}): registered paths skipped");
                false
            }
        };
        let mut probe = Probe::new();
        let send_zc = ring.submitter().register_probe(&mut probe).is_ok() && probe.is_supported(opcode::SendZc::CODE);
        Ok(Rings { ring, registered, send_zc })
    }

    /// Sends `pieces` in order as chains of linked operations; a short or cancelled one is sent
    /// again from where it stopped. Waits for every zero-copy notification before returning.
    fn send_all(
        &mut self,
        socket: RawFd,
        pieces: &mut VecDeque<Piece>,
        how: RingSend,
        counts: &mut RingCounts,
    ) -> io::Result<()> {
        let mut notifications_pending = 0u64;
        while !pieces.is_empty() {
            let chain: Vec<Piece> = pieces.drain(..pieces.len().min(PIECES_PER_CHUNK_MAX as usize)).collect();
            for (index, piece) in chain.iter().enumerate() {
                let entry = match how {
                    RingSend::Send => opcode::Send::new(types::Fd(socket), piece.address, piece.length as u32)
                        .flags(libc::MSG_WAITALL)
                        .build(),
                    RingSend::WriteFixed => opcode::WriteFixed::new(
                        types::Fd(socket),
                        piece.address,
                        piece.length as u32,
                        piece.buffer_index,
                    )
                    .build(),
                    RingSend::SendZc => opcode::SendZc::new(types::Fd(socket), piece.address, piece.length as u32)
                        .buf_index(Some(piece.buffer_index))
                        .flags(libc::MSG_WAITALL)
                        .zc_flags(SEND_ZC_REPORT_USAGE)
                        .build(),
                };
                let entry = entry.user_data(index as u64);
                let entry = if index + 1 < chain.len() { entry.flags(squeue::Flags::IO_LINK) } else { entry };
                // SAFETY: the piece's memory stays alive and unmoved until its completion (and
                // notification) is reaped below.
                unsafe { self.ring.submission().push(&entry) }
                    .map_err(|_| io::Error::other("submission queue full"))?;
            }
            let mut results: Vec<Option<i32>> = vec![None; chain.len()];
            let mut outstanding = chain.len();
            while outstanding > 0 {
                self.ring.submit_and_wait(1)?;
                let completions: Vec<cqueue::Entry> = self.ring.completion().collect();
                for completion in completions {
                    if cqueue::notif(completion.flags()) {
                        notifications_pending = notifications_pending.saturating_sub(1);
                        counts.zc_notifications += 1;
                        if completion.result() as u32 & NOTIF_USAGE_ZC_COPIED != 0 {
                            counts.zc_copied += 1;
                        }
                        continue;
                    }
                    if cqueue::more(completion.flags()) {
                        notifications_pending += 1;
                    }
                    results[completion.user_data() as usize] = Some(completion.result());
                    outstanding -= 1;
                }
            }
            let mut again = Vec::new();
            for (piece, result) in chain.iter().zip(results) {
                let result = result.unwrap_or(-libc::ECANCELED);
                if result == -libc::ECANCELED {
                    again.push(*piece);
                } else if result < 0 {
                    return Err(io::Error::from_raw_os_error(-result));
                } else if result == 0 {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "ring send sent nothing"));
                } else if (result as usize) < piece.length {
                    counts.resubmits += 1;
                    let sent = result as usize;
                    // SAFETY: advancing within the piece.
                    let address = unsafe { piece.address.add(sent) };
                    again.push(Piece { address, length: piece.length - sent, ..*piece });
                }
            }
            for piece in again.into_iter().rev() {
                pieces.push_front(piece);
            }
        }
        while notifications_pending > 0 {
            self.ring.submit_and_wait(1)?;
            let completions: Vec<cqueue::Entry> = self.ring.completion().collect();
            for completion in completions {
                if cqueue::notif(completion.flags()) {
                    notifications_pending -= 1;
                    counts.zc_notifications += 1;
                    if completion.result() as u32 & NOTIF_USAGE_ZC_COPIED != 0 {
                        counts.zc_copied += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads every `(buffer, length, offset)` at once (not linked: all in flight, like the reads
    /// of one response in netd), again from where a short read stopped.
    fn read_all(&mut self, file: RawFd, reads: &[(*mut u8, usize, u64)]) -> io::Result<()> {
        let mut pending: Vec<(*mut u8, usize, u64)> = reads.to_vec();
        while !pending.is_empty() {
            for (index, &(buffer, length, offset)) in pending.iter().enumerate() {
                let entry = opcode::Read::new(types::Fd(file), buffer, length as u32)
                    .offset(offset)
                    .build()
                    .user_data(index as u64);
                // SAFETY: the buffers stay alive until every completion is reaped below.
                unsafe { self.ring.submission().push(&entry) }
                    .map_err(|_| io::Error::other("submission queue full"))?;
            }
            let mut results: Vec<Option<i32>> = vec![None; pending.len()];
            let mut outstanding = pending.len();
            while outstanding > 0 {
                self.ring.submit_and_wait(1)?;
                let completions: Vec<cqueue::Entry> = self.ring.completion().collect();
                for completion in completions {
                    results[completion.user_data() as usize] = Some(completion.result());
                    outstanding -= 1;
                }
            }
            let mut again = Vec::new();
            for (&(buffer, length, offset), result) in pending.iter().zip(results) {
                let result = result.unwrap_or(-libc::EIO);
                if result < 0 {
                    return Err(io::Error::from_raw_os_error(-result));
                }
                if result == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "ring read past the end"));
                }
                let read = result as usize;
                if read < length {
                    // SAFETY: advancing within the buffer.
                    again.push((unsafe { buffer.add(read) }, length - read, offset + read as u64));
                }
            }
            pending = again;
        }
        Ok(())
    }
}

/// What the sender did in one measurement, besides moving the bytes.
#[derive(Clone, Copy, Debug, Default)]
struct SendCounts {
    ring: RingCounts,
    pipe_bytes: usize,
}

/// Sends (or, for `pread-only`, reads) the whole file along `path`, one response of
/// `chunk_bytes` at a time, each made of `piece_bytes` pieces.
fn run_path(
    path: SendPath,
    source: &Source,
    rings: &mut Rings,
    socket: Option<RawFd>,
    chunk_bytes: u64,
    piece_bytes: u64,
) -> anyhow::Result<SendCounts> {
    let file = source.file.as_raw_fd();
    let file_bytes = source.file_bytes();
    let socket_fd = || socket.context("this path needs a socket");
    let mut counts = SendCounts::default();
    let pipe = if path == SendPath::Splice { Some(Pipe::new().context("pipe")?) } else { None };
    counts.pipe_bytes = pipe.as_ref().map_or(0, |pipe| pipe.bytes);
    let mut reused = if matches!(path, SendPath::PreadWritevReused | SendPath::PreadOnly) {
        vec![0u8; chunk_bytes as usize]
    } else {
        Vec::new()
    };
    if matches!(path, SendPath::UringWriteFixed | SendPath::UringSendZc) && !rings.registered {
        bail!("registered buffers unavailable");
    }
    if path == SendPath::UringSendZc && !rings.send_zc {
        bail!("IORING_OP_SEND_ZC unsupported by this kernel");
    }
    let mut offset = 0u64;
    while offset < file_bytes {
        let chunk_length = chunk_bytes.min(file_bytes - offset);
        // The response's pieces: (offset in the file, length).
        let pieces: Vec<(u64, usize)> = (offset..offset + chunk_length)
            .step_by(piece_bytes as usize)
            .map(|start| (start, piece_bytes.min(offset + chunk_length - start) as usize))
            .collect();
        let memory_pieces = || -> VecDeque<Piece> {
            pieces
                .iter()
                .map(|&(start, length)| Piece {
                    address: source.memory[start as usize..].as_ptr(),
                    length,
                    buffer_index: (start / piece_bytes) as u16,
                })
                .collect()
        };
        match path {
            SendPath::WritevMemory => {
                let slices: Vec<&[u8]> = pieces
                    .iter()
                    .map(|&(start, length)| &source.memory[start as usize..start as usize + length])
                    .collect();
                writev_all(socket_fd()?, &slices)?;
            }
            SendPath::UringSendMemory => {
                rings.send_all(socket_fd()?, &mut memory_pieces(), RingSend::Send, &mut counts.ring)?
            }
            SendPath::UringWriteFixed => {
                rings.send_all(socket_fd()?, &mut memory_pieces(), RingSend::WriteFixed, &mut counts.ring)?
            }
            SendPath::UringSendZc => {
                rings.send_all(socket_fd()?, &mut memory_pieces(), RingSend::SendZc, &mut counts.ring)?
            }
            SendPath::PreadWritevFresh => {
                // Like netd's file read: a new uninitialised buffer per partition's range.
                let mut buffers: Vec<Vec<u8>> = Vec::with_capacity(pieces.len());
                for &(start, length) in &pieces {
                    let mut buffer: Vec<u8> = Vec::with_capacity(length);
                    pread_exact(file, buffer.as_mut_ptr(), length, start)?;
                    // SAFETY: pread_exact initialised all `length` bytes.
                    unsafe { buffer.set_len(length) };
                    buffers.push(buffer);
                }
                let slices: Vec<&[u8]> = buffers.iter().map(Vec::as_slice).collect();
                writev_all(socket_fd()?, &slices)?;
            }
            SendPath::PreadWritevReused | SendPath::PreadOnly => {
                let mut at = 0usize;
                for &(start, length) in &pieces {
                    pread_exact(file, reused[at..].as_mut_ptr(), length, start)?;
                    at += length;
                }
                if path == SendPath::PreadWritevReused {
                    let slices: Vec<&[u8]> = reused[..at].chunks(piece_bytes as usize).collect();
                    writev_all(socket_fd()?, &slices)?;
                }
            }
            SendPath::UringReadSend => {
                let mut buffers: Vec<Vec<u8>> = pieces.iter().map(|&(_, length)| Vec::with_capacity(length)).collect();
                let reads: Vec<(*mut u8, usize, u64)> = buffers
                    .iter_mut()
                    .zip(&pieces)
                    .map(|(buffer, &(start, length))| (buffer.as_mut_ptr(), length, start))
                    .collect();
                rings.read_all(file, &reads)?;
                for (buffer, &(_, length)) in buffers.iter_mut().zip(&pieces) {
                    // SAFETY: read_all filled every buffer's `length` bytes.
                    unsafe { buffer.set_len(length) };
                }
                let mut send_pieces: VecDeque<Piece> = buffers
                    .iter()
                    .map(|buffer| Piece { address: buffer.as_ptr(), length: buffer.len(), buffer_index: 0 })
                    .collect();
                rings.send_all(socket_fd()?, &mut send_pieces, RingSend::Send, &mut counts.ring)?;
            }
            SendPath::Sendfile => sendfile_all(socket_fd()?, file, offset, chunk_length)?,
            SendPath::Splice => pipe.as_ref().context("pipe")?.splice_all(socket_fd()?, file, offset, chunk_length)?,
        }
        offset += chunk_length;
    }
    Ok(counts)
}

/// What the receiver thread saw.
#[derive(Debug)]
struct Received {
    bytes: u64,
    checksum: Option<u64>,
    cpu_seconds: f64,
    done: Instant,
}

fn receive(listener: TcpListener, verify: bool) -> io::Result<Received> {
    let (mut stream, _) = listener.accept()?;
    let cpu_start = cpu_seconds(libc::RUSAGE_THREAD);
    let mut buffer = vec![0u8; RECEIVE_BUFFER_BYTES];
    let mut bytes = 0u64;
    let mut checksum = Checksum::new();
    loop {
        let read = match stream.read(&mut buffer) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if read == 0 {
            break;
        }
        bytes += read as u64;
        if verify {
            checksum.update(&buffer[..read]);
        }
    }
    let done = Instant::now();
    Ok(Received {
        bytes,
        checksum: verify.then_some(checksum.0),
        cpu_seconds: cpu_seconds(libc::RUSAGE_THREAD) - cpu_start,
        done,
    })
}

/// One measurement of one path.
#[derive(Debug)]
struct Measured {
    bytes: u64,
    seconds: f64,
    sender_cpu_seconds: f64,
    receiver_cpu_seconds: f64,
    process_cpu_seconds: f64,
    foreign_cpu_seconds: f64,
    checksum: Option<u64>,
    counts: SendCounts,
}

fn measure(
    path: SendPath,
    source: &Source,
    rings: &mut Rings,
    chunk_bytes: u64,
    piece_bytes: u64,
    verify: bool,
) -> anyhow::Result<Measured> {
    let mut receiver = None;
    let mut stream = None;
    if path.uses_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").context("bind the receiver")?;
        let address = listener.local_addr()?;
        receiver = Some(std::thread::spawn(move || receive(listener, verify)));
        stream = Some(TcpStream::connect(address).context("connect to the receiver")?);
    }
    let machine_start = machine_busy_seconds();
    let process_start = cpu_seconds(libc::RUSAGE_SELF);
    let sender_start = cpu_seconds(libc::RUSAGE_THREAD);
    let started = Instant::now();
    let counts = run_path(path, source, rings, stream.as_ref().map(AsRawFd::as_raw_fd), chunk_bytes, piece_bytes)?;
    let sender_cpu_seconds = cpu_seconds(libc::RUSAGE_THREAD) - sender_start;
    let mut done = Instant::now();
    let mut received = None;
    if let (Some(stream), Some(receiver)) = (stream, receiver) {
        stream.shutdown(Shutdown::Write).context("shutdown")?;
        let got = receiver.join().map_err(|_| anyhow::anyhow!("the receiver panicked"))?.context("receive")?;
        done = got.done;
        received = Some(got);
    }
    let process_cpu_seconds = cpu_seconds(libc::RUSAGE_SELF) - process_start;
    let foreign_cpu_seconds = (machine_busy_seconds() - machine_start - process_cpu_seconds).max(0.0);
    let bytes = received.as_ref().map_or(source.file_bytes(), |got| got.bytes);
    if bytes != source.file_bytes() {
        bail!("{}: the receiver got {bytes} bytes of {}", path.name(), source.file_bytes());
    }
    Ok(Measured {
        bytes,
        seconds: done.duration_since(started).as_secs_f64(),
        sender_cpu_seconds,
        receiver_cpu_seconds: received.as_ref().map_or(0.0, |got| got.cpu_seconds),
        process_cpu_seconds,
        foreign_cpu_seconds,
        checksum: received.and_then(|got| got.checksum),
        counts,
    })
}

/// The median of a row's rounds; NaN (printed as such) for a row without any.
fn median(values: &[f64]) -> f64 {
    skua_bench::median(values).unwrap_or(f64::NAN)
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &value| (low.min(value), high.max(value)))
}

/// One row of the report: a path at a chunk size and temperature over the rounds.
#[derive(Debug)]
struct Row {
    path: SendPath,
    chunk_bytes: u64,
    temperature: Temperature,
    samples: Vec<Value>,
    rates: Vec<f64>,
    sender: Vec<f64>,
    receiver: Vec<f64>,
    process: Vec<f64>,
}

fn main() -> anyhow::Result<()> {
    let options = parse_options(std::env::args().skip(1))?;
    let facts = RunFacts::collect();
    let workspace = std::env::current_dir().context("cwd")?;
    let results_dir = options.results.clone().unwrap_or_else(|| facts.results_dir(&workspace).join("send-paths"));

    let mut budget_seconds = LOAD_WAIT_SECONDS_MAX;
    let load_at_start = load_average();
    let waited_at_start = wait_for_quiet(options.load_max, &mut budget_seconds);

    std::fs::create_dir_all(&options.dir).context("--dir")?;
    if let Some(free) = free_bytes(&options.dir) {
        if free < options.file_bytes + SPARE_DISK_BYTES {
            bail!(
                "{} has {} MiB free: not enough for the test file and a spare GiB",
                options.dir.display(),
                free >> 20
            );
        }
    }
    let temp = TempDir(options.dir.join(format!(".send-paths-{}", std::process::id())));
    std::fs::create_dir_all(&temp.0).context("temp dir")?;
    eprintln!("send-paths: writing a {} MiB file in {}", options.file_bytes >> 20, temp.0.display());
    let source = create_source(&temp.0, options.file_bytes)?;
    let mut rings = Rings::new(&source, options.piece_bytes)?;
    let niceness = {
        // SAFETY: getpriority has no memory effects.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    };

    let mut rows: Vec<Row> = Vec::new();
    let mut round_loads: Vec<Value> = Vec::new();
    let mut waited_seconds = waited_at_start;
    for &chunk_bytes in &options.chunk_bytes {
        for &temperature in &options.temperatures {
            let paths: Vec<SendPath> = options
                .paths
                .iter()
                .copied()
                .filter(|path| temperature == Temperature::Hot || path.reads_file())
                .filter(|path| match path {
                    SendPath::UringWriteFixed => rings.registered,
                    SendPath::UringSendZc => rings.registered && rings.send_zc,
                    _ => true,
                })
                .collect();
            let first_row = rows.len();
            for &path in &paths {
                rows.push(Row {
                    path,
                    chunk_bytes,
                    temperature,
                    samples: Vec::new(),
                    rates: Vec::new(),
                    sender: Vec::new(),
                    receiver: Vec::new(),
                    process: Vec::new(),
                });
            }
            for round in 0..options.rounds {
                waited_seconds += wait_for_quiet(options.load_max, &mut budget_seconds);
                let load = load_average();
                round_loads.push(json!({
                    "chunk_bytes": chunk_bytes, "temperature": temperature.name(), "round": round, "load_average": load,
                }));
                // A different path goes first each round, so no path always follows the same one.
                for step in 0..paths.len() {
                    let index = (round + step) % paths.len();
                    let path = paths[index];
                    let resident = if path.reads_file() { prepare(&source, temperature)? } else { f64::NAN };
                    let measured = measure(path, &source, &mut rings, chunk_bytes, options.piece_bytes, options.verify)
                        .with_context(|| format!("{} {} {} MiB", path.name(), temperature.name(), chunk_bytes >> 20))?;
                    if options.verify && measured.checksum != Some(source.checksum) && path.uses_socket() {
                        bail!("{}: the receiver's checksum differs from the file's", path.name());
                    }
                    let gib = measured.bytes as f64 / GIB;
                    let rate = gib / measured.seconds;
                    eprintln!(
                        "  {:>2} MiB {:4} round {round} {:20} {rate:6.2} GiB/s  sender {:.3} receiver {:.3} process {:.3} CPU s/GiB  others {:.2} s  resident {:.2}  load {load}",
                        chunk_bytes >> 20,
                        temperature.name(),
                        path.name(),
                        measured.sender_cpu_seconds / gib,
                        measured.receiver_cpu_seconds / gib,
                        measured.process_cpu_seconds / gib,
                        measured.foreign_cpu_seconds,
                        resident,
                    );
                    let row = &mut rows[first_row + index];
                    row.rates.push(rate);
                    row.sender.push(measured.sender_cpu_seconds / gib);
                    row.receiver.push(measured.receiver_cpu_seconds / gib);
                    row.process.push(measured.process_cpu_seconds / gib);
                    row.samples.push(json!({
                        "round": round,
                        "bytes": measured.bytes,
                        "seconds": measured.seconds,
                        "gib_per_second": rate,
                        "sender_cpu_seconds": measured.sender_cpu_seconds,
                        "receiver_cpu_seconds": measured.receiver_cpu_seconds,
                        "process_cpu_seconds": measured.process_cpu_seconds,
                        "foreign_cpu_seconds": measured.foreign_cpu_seconds,
                        "page_cache_resident_fraction": if resident.is_nan() { Value::Null } else { json!(resident) },
                        "load_average": load,
                        "ring_resubmits": measured.counts.ring.resubmits,
                        "zc_notifications": measured.counts.ring.zc_notifications,
                        "zc_copied": measured.counts.ring.zc_copied,
                        "pipe_bytes": measured.counts.pipe_bytes,
                    }));
                }
            }
        }
    }

    // The report: one row per path, chunk size and temperature; the ratio to sendfile's median
    // at the same chunk size and temperature.
    let sendfile_median = |chunk_bytes: u64, temperature: Temperature| {
        rows.iter()
            .find(|row| {
                row.path == SendPath::Sendfile && row.chunk_bytes == chunk_bytes && row.temperature == temperature
            })
            .map(|row| median(&row.rates))
    };
    let mut table = String::from(
        "| response | data | path | GiB/s median (min–max) | × sendfile | sender CPU s/GiB | receiver CPU s/GiB | process CPU s/GiB |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mut summary = Vec::new();
    for row in &rows {
        let rate = median(&row.rates);
        let (low, high) = min_max(&row.rates);
        let versus = sendfile_median(row.chunk_bytes, row.temperature).map(|base| rate / base);
        let versus_text = versus.map_or("–".to_string(), |ratio| format!("{ratio:.2}"));
        table.push_str(&format!(
            "| {} MiB | {} | {} | {:.2} ({:.2}–{:.2}) | {} | {:.3} | {:.3} | {:.3} |\n",
            row.chunk_bytes >> 20,
            row.temperature.name(),
            row.path.name(),
            rate,
            low,
            high,
            versus_text,
            median(&row.sender),
            median(&row.receiver),
            median(&row.process),
        ));
        summary.push(json!({
            "path": row.path.name(),
            "chunk_bytes": row.chunk_bytes,
            "temperature": row.temperature.name(),
            "gib_per_second_median": rate,
            "gib_per_second_min": low,
            "gib_per_second_max": high,
            "versus_sendfile": versus,
            "sender_cpu_seconds_per_gib_median": median(&row.sender),
            "receiver_cpu_seconds_per_gib_median": median(&row.receiver),
            "process_cpu_seconds_per_gib_median": median(&row.process),
            "samples": row.samples,
        }));
    }
    println!("{table}");

    let report = json!({
        "tool": "send-paths",
        "run": serde_json::from_str::<Value>(&facts.json()).unwrap_or(Value::Null),
        "parameters": {
            "file_bytes": options.file_bytes,
            "chunk_bytes": options.chunk_bytes,
            "piece_bytes": options.piece_bytes,
            "rounds": options.rounds,
            "receive_buffer_bytes": RECEIVE_BUFFER_BYTES,
            "dir": options.dir.display().to_string(),
            "niceness": niceness,
            "load_max": options.load_max,
            "verify": options.verify,
            "registered_buffers": rings.registered,
            "send_zc_supported": rings.send_zc,
        },
        "load_average_at_start": load_at_start,
        "waited_for_quiet_seconds": waited_seconds,
        "round_load_averages": round_loads,
        "rows": summary,
    });
    std::fs::create_dir_all(&results_dir).with_context(|| format!("create {}", results_dir.display()))?;
    std::fs::write(results_dir.join("send-paths.json"), serde_json::to_string_pretty(&report)?)
        .context("write send-paths.json")?;
    let loads: Vec<String> =
        round_loads.iter().filter_map(|load| load["load_average"].as_str().map(str::to_string)).collect();
    let markdown = format!(
        "# send-paths ({commit}, {date})\n\n\
         A {file_mib} MiB file sent to a loopback receiver (recv into a {receive_kib} KiB buffer) in \
         responses of the given size made of {piece_kib} KiB pieces; {rounds} rounds, median and min–max. \
         Hot: the file read into the page cache just before; cold: page cache dropped before each \
         measurement. Memory paths send bytes the process holds. CPU: the sending thread (which also \
         runs loopback's receive softirq), the receiving thread, the whole process (io_uring workers \
         included). Niceness {niceness}; load average at start {load_at_start}, per round: {loads}; \
         waited {waited_seconds} s for quiet. Kernel {kernel}.\n\n{table}",
        commit = facts.commit,
        date = facts.date,
        file_mib = options.file_bytes >> 20,
        receive_kib = RECEIVE_BUFFER_BYTES >> 10,
        piece_kib = options.piece_bytes >> 10,
        rounds = options.rounds,
        loads = loads.join("; "),
        kernel = facts.kernel,
    );
    std::fs::write(results_dir.join("send-paths.md"), markdown).context("write send-paths.md")?;
    eprintln!("send-paths: written to {}", results_dir.display());
    drop(rings);
    drop(source);
    drop(temp);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path delivers exactly the file's bytes, in order, also with a last response and a
    /// last piece shorter than the others.
    #[test]
    fn every_path_delivers_the_files_bytes_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let piece_bytes = 64 * 1024;
        let chunk_bytes = 4 * piece_bytes;
        let source = create_source(dir.path(), 1024 * 1024 + 12_345).expect("source");
        let mut rings = Rings::new(&source, piece_bytes).expect("rings");
        for path in SendPath::ALL {
            if path == SendPath::UringSendZc && !rings.send_zc {
                continue;
            }
            let measured = measure(path, &source, &mut rings, chunk_bytes, piece_bytes, true).unwrap_or_else(|error| {
                panic!("{}: {error:#}", path.name());
            });
            assert_eq!(measured.bytes, source.file_bytes(), "{}", path.name());
            if path.uses_socket() {
                assert_eq!(measured.checksum, Some(source.checksum), "{}", path.name());
            }
        }
    }

    #[test]
    fn options_refuse_a_response_that_is_not_whole_pieces() {
        let args = |list: &[&str]| list.iter().map(|arg| arg.to_string()).collect::<Vec<_>>();
        assert!(parse_options(args(&["--chunks-mib", "1", "--piece-kib", "768"])).is_err());
        assert!(parse_options(args(&["--chunks-mib", "16,1"])).is_ok());
        assert!(parse_options(args(&["--rounds", "0"])).is_err());
    }
}
