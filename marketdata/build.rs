//! Sets `cfg(multicast)` when the tests may send multicast: inside
//! `.ci/netns-run` (which sets `NETNS_RUN=1`) or with
//! `MD_MULTICAST=1` on a host whose loopback carries multicast. Without it
//! the multicast tests are compiled as ignored, so the harness reports them
//! as skipped rather than passed.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(multicast)");
    println!("cargo::rerun-if-env-changed=NETNS_RUN");
    println!("cargo::rerun-if-env-changed=MD_MULTICAST");
    let on = |name: &str| std::env::var(name).is_ok_and(|value| value == "1");
    if on("NETNS_RUN") || on("MD_MULTICAST") {
        println!("cargo::rustc-cfg=multicast");
    }
}
