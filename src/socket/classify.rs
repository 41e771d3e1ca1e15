//! The pure classifiers behind layers 1 and 2: what an errno or a stat means, shared by
//! both backends. Crate-private: a dependent sees their answers through [`inspect`],
//! [`inspect_and_probe`] and [`verdict`](super::verdict), and no dependent needs to
//! classify a raw errno or stat itself.
//!
//! [`inspect`]: super::inspect
//! [`inspect_and_probe`]: super::inspect_and_probe

use nix::errno::Errno;
use nix::sys::stat::{FileStat, SFlag};

use super::{AddressConflict, Inspection, OsError, Probe, ProbeDoubt};

/// Classifies a failed look at the path: ENOENT is absent, the rest indeterminate.
#[must_use]
pub(crate) fn classify_inspect_error(op: &'static str, errno: Errno) -> Inspection {
    match errno {
        Errno::ENOENT => Inspection::Absent,
        other => Inspection::Indeterminate(OsError::new(op, other)),
    }
}

/// Classifies what `stat` says sits at the path, for a process whose effective uid is
/// `euid`.
#[must_use]
pub(crate) fn classify_stat(stat: &FileStat, euid: u32) -> Inspection {
    #[cfg_attr(
        target_os = "linux",
        expect(clippy::useless_conversion, reason = "mode_t is u16 on some platforms")
    )]
    let mode = u32::from(stat.st_mode);
    classify_mode(mode, stat.st_uid, euid)
}

/// [`classify_stat`] on raw fields (`mode` as in `st_mode`), for tests and callers
/// holding another stat type.
#[must_use]
pub(crate) fn classify_mode(mode: u32, owner: u32, euid: u32) -> Inspection {
    let kind = mode & file_type_bits(SFlag::S_IFMT);
    if kind == file_type_bits(SFlag::S_IFLNK) {
        Inspection::AddressConflict(AddressConflict::Symlink)
    } else if kind != file_type_bits(SFlag::S_IFSOCK) {
        Inspection::AddressConflict(AddressConflict::NotSocket)
    } else if owner != euid {
        Inspection::AddressConflict(AddressConflict::ForeignOwner { uid: owner })
    } else {
        Inspection::SocketFile
    }
}

#[cfg_attr(
    target_os = "linux",
    expect(clippy::useless_conversion, reason = "mode_t is u16 on some platforms")
)]
pub(super) fn file_type_bits(flag: SFlag) -> u32 {
    u32::from(flag.bits())
}

/// Classifies a failed connect: ECONNREFUSED/ENOENT dead, EAGAIN a full backlog, the
/// rest indeterminate.
#[must_use]
pub(crate) fn classify_connect_error(errno: Errno) -> Probe {
    match errno {
        Errno::ECONNREFUSED | Errno::ENOENT => Probe::Dead(OsError::new("connect", errno)),
        Errno::EAGAIN => Probe::Indeterminate(ProbeDoubt::BacklogFull),
        other => Probe::Indeterminate(ProbeDoubt::Os(OsError::new("connect", other))),
    }
}
