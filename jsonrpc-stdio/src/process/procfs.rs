//! Everything read from `/proc` (Linux), in one place. Every function here
//! blocks on the file system: call them off the async runtime's threads.
//! Where `/proc` is not mounted they find nothing.

use std::fs;

/// One line of `/proc/PID/stat`, as much as is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) ppid: u32,
    /// The one-letter state: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub(crate) state: u8,
}

impl Stat {
    /// Parses the contents of a `stat` file. The command name (field 2) is in
    /// parentheses and may itself hold spaces or parentheses: the fields that
    /// follow start after the last `)`.
    pub(crate) fn parse(stat: &str) -> Option<Stat> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace();
        let state = *fields.next()?.as_bytes().first()?;
        let ppid = fields.next()?.parse().ok()?;
        Some(Stat { ppid, state })
    }

    /// Gone for every purpose but being reaped.
    pub(crate) fn is_dead(&self) -> bool {
        matches!(self.state, b'Z' | b'X')
    }
}

/// The stat of `pid`, or `None` when it does not exist (any more).
pub(crate) fn stat(pid: u32) -> Option<Stat> {
    Stat::parse(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether `pid` exists and is not a zombie.
pub(crate) fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| !s.is_dead())
}

/// The threads that walked `/proc`, so a test can tell the walks never
/// ran on a runtime's thread.
#[cfg(test)]
pub(crate) static WALKERS: std::sync::Mutex<Vec<std::thread::ThreadId>> =
    std::sync::Mutex::new(Vec::new());

/// Every process id under `/proc`.
fn pids() -> Vec<u32> {
    #[cfg(test)]
    crate::lock(&WALKERS).push(std::thread::current().id());
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Every live or zombie descendant of `root`, parents before children.
/// A process is a descendant only while the chain of parents holds: once a
/// process dies its children are re-parented and no longer found from
/// `root`. `skip` prunes subtrees (with their roots) from the walk.
pub(crate) fn descendants(root: u32, skip: &[u32]) -> Vec<u32> {
    let parent_of: Vec<(u32, u32)> = pids()
        .into_iter()
        .filter_map(|pid| Some((pid, stat(pid)?.ppid)))
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|&&(pid, ppid)| ppid == parent && !skip.contains(&pid))
                .map(|&(pid, _)| pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// The inode of the pipe behind our file descriptor `fd`, read from
/// `/proc/self/fd/N` (`pipe:[INODE]`), so that it compares with what other
/// processes' `/proc/PID/fd` links say.
pub(crate) fn pipe_inode(fd: i32) -> Option<u64> {
    parse_pipe_link(&fs::read_link(format!("/proc/self/fd/{fd}")).ok()?)
}

fn parse_pipe_link(link: &std::path::Path) -> Option<u64> {
    link.to_str()?
        .strip_prefix("pipe:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// One end of a pipe: its inode, and whether the end we look for is the
/// one that writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PipeEnd {
    pub(crate) inode: u64,
    pub(crate) write: bool,
}

/// Every process other than this one that holds one of `ends` open, whatever
/// its parent, group or session. Processes of other users cannot be read
/// (nor signalled) and are not listed.
///
/// The end matters: a process forked from this one, in the instant before it
/// execs, holds copies of *our* ends; only the server's family holds the
/// other ones.
pub(crate) fn holders(ends: &[PipeEnd]) -> Vec<u32> {
    if ends.is_empty() {
        return Vec::new();
    }
    let me = std::process::id();
    pids()
        .into_iter()
        .filter(|&pid| pid != me && holds(pid, ends))
        .collect()
}

fn holds(pid: u32, ends: &[PipeEnd]) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        let Some(inode) = fs::read_link(fd.path())
            .ok()
            .and_then(|l| parse_pipe_link(&l))
        else {
            return false;
        };
        ends.iter().any(|end| {
            end.inode == inode
                && opened_for_writing(pid, &fd.file_name().to_string_lossy()) == Some(end.write)
        })
    })
}

/// Whether `pid`'s file descriptor `fd` was opened for writing, from the
/// `flags:` line (octal) of `/proc/PID/fdinfo/FD`.
fn opened_for_writing(pid: u32, fd: &str) -> Option<bool> {
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())?;
    // O_ACCMODE: O_RDONLY 0, O_WRONLY 1, O_RDWR 2.
    Some(flags & 3 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_last_parenthesis() {
        let s = Stat::parse("42 (a (b) c) Z 7 42 42 0 -1").unwrap();
        assert_eq!(
            s,
            Stat {
                ppid: 7,
                state: b'Z'
            }
        );
        assert!(s.is_dead());
        assert_eq!(Stat::parse("42 (x"), None);
        assert_eq!(Stat::parse("42 (x) S"), None);
    }

    #[test]
    fn pipe_links_name_their_inode() {
        assert_eq!(
            parse_pipe_link(std::path::Path::new("pipe:[123456]")),
            Some(123456)
        );
        assert_eq!(parse_pipe_link(std::path::Path::new("socket:[1]")), None);
        assert_eq!(parse_pipe_link(std::path::Path::new("/dev/null")), None);
    }

    #[test]
    fn this_process_is_alive_and_its_parent_is_read() {
        let me = stat(std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(is_alive(std::process::id()));
    }
}
