//! glibc's malloc gives every thread a cache of the blocks it freed (the
//! "tcache"). Under `ab -c 1000` hundreds of request threads are alive at
//! once, and their caches held a good part of the server's memory: peak
//! 19–27 MB with them against 16–18 MB without for lua, 32–42 against 18–30
//! MB for watch-retry (3 runs each), and requests/s did not drop. The cache
//! can only be turned off as a process starts, by the GLIBC_TUNABLES
//! variable, so seckill starts itself again with it set. Linux with glibc
//! only (see lib.rs).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The variable glibc reads its tunables from, and the one set here.
const TUNABLES: &str = "GLIBC_TUNABLES";
const TCACHE_COUNT: &str = "glibc.malloc.tcache_count";

/// Starts this program again, same process and arguments, with glibc's
/// thread caches off. Returns at once if they are off already, if the user
/// set tcache_count, or if the program is set-user-id (glibc would drop the
/// setting, and this would start again forever). Returns after saying why
/// if starting again failed; the server then runs as it is.
pub fn turn_off() {
    let tunables = std::env::var(TUNABLES).unwrap_or_default();
    let Some(tunables) = with_tcache_off(&tunables) else {
        return;
    };
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let set_id =
        std::fs::metadata(&exe).map_or(true, |meta| meta.permissions().mode() & 0o6000 != 0);
    if set_id {
        return;
    }
    let mut args = std::env::args_os();
    let mut again = Command::new(&exe);
    if let Some(name) = args.next() {
        again.arg0(name);
    }
    let err = again.args(args).env(TUNABLES, tunables).exec();
    eprintln!(
        "seckill: could not start again with glibc's thread caches off ({err}); \
         running with them, which takes more memory under big crowds"
    );
}

/// The user's tunables with the thread caches off, or None when the user
/// already chose their size.
fn with_tcache_off(tunables: &str) -> Option<String> {
    match tunables {
        _ if tunables.contains(TCACHE_COUNT) => None,
        "" => Some(format!("{TCACHE_COUNT}=0")),
        others => Some(format!("{others}:{TCACHE_COUNT}=0")),
    }
}

#[cfg(test)]
mod tests {
    use super::with_tcache_off;

    #[test]
    fn the_cache_goes_after_the_users_tunables_and_never_over_their_own_count() {
        let off = "glibc.malloc.tcache_count=0";
        assert_eq!(with_tcache_off("").as_deref(), Some(off));
        assert_eq!(
            with_tcache_off("glibc.malloc.arena_max=2").as_deref(),
            Some("glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0")
        );
        assert_eq!(with_tcache_off("glibc.malloc.tcache_count=3"), None);
    }
}
